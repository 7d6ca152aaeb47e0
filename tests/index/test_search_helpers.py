"""The pieces of filtered search: id sets, membership, selectors, how many IVF lists to scan."""

from __future__ import annotations

import faiss
import numpy as np

from attnlens.index.search import filtered_nprobe, id_selector, is_member, sorted_unique


def test_sorted_unique_keeps_sorted_input_and_fixes_the_rest():
    assert sorted_unique([1, 4, 9]).tolist() == [1, 4, 9]
    assert sorted_unique([9, 1, 4, 1, 9]).tolist() == [1, 4, 9]
    assert sorted_unique([]).tolist() == []


def test_is_member_matches_isin():
    rng = np.random.default_rng(0)
    allowed = np.unique(rng.integers(0, 1000, 300))
    ids = rng.integers(-5, 1005, 500)
    assert np.array_equal(is_member(allowed, ids), np.isin(ids, allowed))
    assert not is_member(np.zeros(0, dtype=np.int64), ids).any()


def test_id_selectors_admit_exactly_the_allowed_ids():
    dense = np.array([0, 2, 3, 64, 65, 1000], dtype=np.int64)
    sparse = np.array([5, 2**40], dtype=np.int64)  # a bitmap up to 2**40 would be 128 GiB
    for allowed, kind in ((dense, faiss.IDSelectorBitmap), (sparse, faiss.IDSelectorBatch)):
        selector, _buffer = id_selector(allowed)
        assert isinstance(selector, kind)
        probe = np.concatenate([allowed, allowed + 1, [1, 4, 999]])
        expected = np.isin(probe, allowed)
        assert [selector.is_member(int(i)) for i in probe] == expected.tolist()


def test_filtered_nprobe_scans_more_lists_for_narrower_filters():
    assert filtered_nprobe(16, 4096, 1_000_000, 1_000_000) == 16
    assert filtered_nprobe(16, 4096, 100_000, 1_000_000) == 160
    assert filtered_nprobe(16, 4096, 10, 1_000_000) == 4096
    assert filtered_nprobe(16, 8, 50, 100) == 8
