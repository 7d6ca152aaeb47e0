"""PatternIndex on real SQLite and FAISS files: rebuild from the database, check finds every kind of
mismatch, saves are atomic, and filtered searches return exactly the nearest allowed patterns.

The fake atlas holds two embedding spaces, ("tiny", None) and ("other", None): every search names one."""

from __future__ import annotations

import multiprocessing
import os

import faiss
import numpy as np
import pytest

from attnlens.config import Settings
from attnlens.errors import IndexDimensionMismatch, StoreError
from attnlens.index import IndexSpace, PatternIndex
from attnlens.store import open_store
from attnlens.store.patterns import PatternFilter, load_embeddings, matching_pattern_ids
from tests.store.fake_atlas import fill_atlas

TINY, OTHER = IndexSpace("tiny", None), IndexSpace("other", None)


def exact_neighbours(store, query_ids, candidate_ids, k):
    """Brute force over the database's own embeddings (cosine)."""
    with store.session() as session:
        queries = load_embeddings(session, query_ids)
        candidates = load_embeddings(session, candidate_ids)
    faiss.normalize_L2(queries)
    faiss.normalize_L2(candidates)
    order = np.argsort(-(queries @ candidates.T), axis=1, kind="stable")[:, :k]
    return np.asarray(candidate_ids)[order]


@pytest.fixture
def atlas_store(settings):
    store = open_store(settings)
    return store, fill_atlas(store, n_inferences=30)


def _of(atlas, model):
    mask = atlas.models == model
    return atlas.pattern_ids[mask], atlas.embeddings[mask]


def test_rebuild_makes_a_flat_index_per_space_that_check_accepts(settings, atlas_store):
    store, atlas = atlas_store
    index = PatternIndex.open(settings, store)
    assert index.spaces() == [] and index.count == 0
    assert not index.check(store).ok  # head patterns but no index file yet
    assert index.rebuild_from_db(store) == len(atlas.pattern_ids)
    reopened = PatternIndex.open(settings, store)
    assert reopened.spaces() == [OTHER, TINY]
    for space, model in ((TINY, "tiny"), (OTHER, "other")):
        held = reopened.space(space)
        ids, _ = _of(atlas, model)
        assert (held.kind, held.count, held.dim, held.delta_count) == ("flat", len(ids), 32, 0)
        assert np.array_equal(held.ids(), np.sort(ids))
    report = reopened.check(store)
    assert report.ok, report.summary()
    assert report.index_count == len(atlas.pattern_ids)
    assert report.vectors_compared == len(atlas.pattern_ids)  # under 200 a space: all compared


def test_search_returns_the_exact_nearest_patterns_of_the_space(settings, atlas_store):
    store, atlas = atlas_store
    index = PatternIndex.open(settings, store)
    index.rebuild_from_db(store)
    tiny_ids, tiny_vectors = _of(atlas, "tiny")
    result = index.search(tiny_vectors[:5], k=10, space=TINY)
    assert np.array_equal(result.ids[:, 0], tiny_ids[:5])  # each pattern is its own nearest neighbour
    assert np.array_equal(result.ids, exact_neighbours(store, tiny_ids[:5], tiny_ids, 10))
    assert np.all(np.diff(result.scores, axis=1) <= 1e-6)
    unknown = index.search(tiny_vectors[:2], k=3, space=IndexSpace("tiny", "another-checkpoint"))
    assert (unknown.ids == -1).all()  # a space without an index has no neighbours, not another's


@pytest.mark.parametrize(
    ("space", "pattern_filter"),
    [
        (TINY, PatternFilter(layer=1, head=2)),
        (TINY, PatternFilter(task="identifier", first_token_correct=True)),
        (OTHER, PatternFilter(model_name="other", head=1)),
    ],
)
@pytest.mark.parametrize("kind", ["flat", "ivfpq"])
def test_filtered_search_returns_the_nearest_allowed_patterns(tmp_path, kind, space, pattern_filter):
    overrides = (
        {}
        if kind == "flat"
        else {"flat_max_vectors": 100, "ivf_lists": 8, "pq_bytes": 8, "train_sample": 400}
    )
    settings = Settings(data_dir=tmp_path / "data", index=overrides)
    store = open_store(settings)
    # The compressed space gets 1,080 patterns: every fourth inference is of model "other".
    atlas = fill_atlas(store, n_inferences=30 if kind == "flat" else 240 if space == TINY else 720)
    index = PatternIndex.open(settings, store)
    index.rebuild_from_db(store)
    assert index.space(space).kind == kind
    with store.session() as session:
        allowed = matching_pattern_ids(session, pattern_filter)
    in_space, vectors = _of(atlas, space.model)
    allowed_here = np.intersect1d(allowed, in_space)
    result = index.search(vectors[:4], k=5, filter_ids=allowed, space=space)
    assert np.isin(result.ids, allowed_here).all()
    expected = exact_neighbours(store, in_space[:4], allowed_here, 5)
    if kind == "flat":
        assert np.array_equal(result.ids, expected)
    else:  # approximate candidates, re-ranked exactly: the best match is found, most of the rest too
        assert np.array_equal(result.ids[:, 0], expected[:, 0])
        recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(result.ids, expected, strict=True)])
        assert recall >= 0.9


def test_filter_with_fewer_matches_than_k_pads_with_minus_one(settings, atlas_store):
    store, atlas = atlas_store
    index = PatternIndex.open(settings, store)
    index.rebuild_from_db(store)
    ids, vectors = _of(atlas, "tiny")
    result = index.search(vectors[:2], k=4, filter_ids=ids[:3], space=TINY)
    assert np.array_equal(np.sort(result.ids[:, :3], axis=1), np.tile(np.sort(ids[:3]), (2, 1)))
    assert (result.ids[:, 3] == -1).all()
    assert (index.search(vectors[:1], k=3, filter_ids=[], space=TINY).ids == -1).all()


def _compressed(tmp_path, **overrides):
    index_settings = {
        "flat_max_vectors": 100,
        "ivf_lists": 8,
        "pq_bytes": 8,
        "train_sample": 400,
        **overrides,
    }
    return Settings(data_dir=tmp_path / "data", index=index_settings)


def _recall(found, expected):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, expected, strict=True)])


def test_compressed_index_reranks_candidates_with_exact_scores(tmp_path):
    settings = _compressed(tmp_path)
    store = open_store(settings)
    atlas = fill_atlas(store, n_inferences=240)
    index = PatternIndex.open(settings, store)
    index.rebuild_from_db(store)
    assert index.space(TINY).kind == "ivfpq"
    report = index.check(store)
    assert report.ok, report.summary()
    tiny_ids, tiny_vectors = _of(atlas, "tiny")
    query_ids, queries = tiny_ids[::50], tiny_vectors[::50]
    expected = exact_neighbours(store, query_ids, tiny_ids, 10)

    reranked = index.search(queries, k=10, space=TINY)
    with store.session() as session:
        for row, ids in enumerate(reranked.ids):  # the scores are exact cosines of the returned ids
            stored = load_embeddings(session, ids)
            query = queries[row] / np.linalg.norm(queries[row])
            exact = stored @ query / np.linalg.norm(stored, axis=1)
            np.testing.assert_allclose(reranked.scores[row], exact, rtol=1e-4, atol=1e-4)
    codes_only = PatternIndex.open(settings).search(queries, k=10, space=TINY)  # no store: PQ scores
    assert _recall(reranked.ids, expected) >= _recall(codes_only.ids, expected)
    assert np.array_equal(reranked.ids[:, 0], query_ids)

    # When every stored vector is a candidate, re-ranking is exact search.
    everything = PatternIndex.open(_compressed(tmp_path, rerank_factor=200), store)
    assert np.array_equal(everything.search(queries, k=10, space=TINY).ids, expected)


def test_check_reports_missing_extra_and_changed_vectors(settings, atlas_store):
    store, atlas = atlas_store
    index = PatternIndex.open(settings, store)
    index.rebuild_from_db(store)
    ids, vectors = _of(atlas, "tiny")
    held = index.space(TINY)
    held.remove(ids[:3])
    held.add([10**6], np.ones((1, 32), dtype=np.float32))
    held.add(ids[3:5], -vectors[3:5])  # wrong vectors under real ids
    held.save()
    report = PatternIndex.open(settings).check(store)
    assert not report.ok
    assert np.array_equal(report.only_in_database, np.sort(ids[:3]))
    assert np.array_equal(report.only_in_index, [10**6])
    assert set(report.vectors_differing) == set(ids[3:5].tolist())
    assert "attnlens index rebuild" in report.summary()
    PatternIndex.open(settings).rebuild_from_db(store)
    assert PatternIndex.open(settings).check(store).ok


def test_check_reports_a_dimension_mismatch(settings, atlas_store):
    store, atlas = atlas_store
    index = PatternIndex.open(settings, store)
    ids, _ = _of(atlas, "tiny")
    held = index.space(TINY, create=True)
    held.add(ids, np.zeros((len(ids), 16), dtype=np.float32) + 1)
    held.save()
    report = PatternIndex.open(settings).check(store)
    assert not report.ok
    assert any("16-d" in problem for problem in report.problems)
    with pytest.raises(IndexDimensionMismatch, match="rebuild"):
        held.add([1], np.ones((1, 32), dtype=np.float32))


def test_adding_an_id_again_replaces_its_vector(settings):
    index = PatternIndex.open(settings)
    held = index.space(TINY, create=True)
    vectors = np.eye(4, dtype=np.float32)
    held.add([1, 2], vectors[:2])
    held.save()
    held.fold()  # 1 and 2 now in the main index
    held.add([1], vectors[2:3])  # replaces the main index's vector of id 1
    held.save()
    reopened = PatternIndex.open(settings).space(TINY)
    assert reopened.count == 2 and np.array_equal(reopened.ids(), [1, 2])
    assert PatternIndex.open(settings).search(vectors[2:3], k=1, space=TINY).ids[0, 0] == 1


def _save_then_crash(data_dir: str, fold: bool) -> None:
    settings = Settings(data_dir=data_dir)
    held = PatternIndex.open(settings).space(TINY)
    held.add(np.arange(100, 200), np.random.default_rng(1).standard_normal((100, 8)).astype(np.float32))
    # Die after a new file is fully written but before it replaces the old one: the worst moment.
    os.replace = lambda *args: os._exit(17)
    held.fold() if fold else held.save()


@pytest.mark.parametrize("fold", [False, True])
def test_a_crash_during_save_leaves_the_old_index_readable(settings, fold):
    held = PatternIndex.open(settings).space(TINY, create=True)
    held.add(np.arange(10), np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32))
    held.save()
    held.fold()
    held.add(np.arange(10, 12), np.ones((2, 8), dtype=np.float32))
    held.save()
    before = (held.main_path, held.main_path.stat().st_size, held.delta_path.read_bytes())
    child = multiprocessing.get_context("fork").Process(
        target=_save_then_crash, args=(str(settings.data_dir), fold)
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 17
    assert list(settings.index_dir.glob("*.tmp"))  # the crashed save's leftovers
    survivor = PatternIndex.open(settings).space(TINY)
    assert (survivor.main_path, survivor.main_path.stat().st_size, survivor.delta_path.read_bytes()) == before
    assert np.array_equal(survivor.ids(), np.arange(12))
    survivor.add([12], np.ones((1, 8), dtype=np.float32))
    survivor.save()
    survivor.fold()
    assert not list(settings.index_dir.glob("*.tmp"))
    assert PatternIndex.open(settings).count == 13


def test_a_torn_index_file_says_to_rebuild(settings):
    held = PatternIndex.open(settings).space(TINY, create=True)
    held.add(np.arange(10), np.ones((10, 8), dtype=np.float32))
    held.save()
    held.fold()
    held.main_path.write_bytes(held.main_path.read_bytes()[:50])
    with pytest.raises(StoreError, match="attnlens index rebuild"):
        PatternIndex.open(settings).search(np.ones((1, 8), np.float32), k=1, space=TINY)


def test_reload_if_changed_sees_another_writers_save(settings):
    reader = PatternIndex.open(settings)
    assert reader.reload_if_changed() is False
    writer = PatternIndex.open(settings).space(TINY, create=True)
    writer.add([1, 2], np.eye(2, 8, dtype=np.float32))
    writer.save()
    assert reader.reload_if_changed() is True
    assert reader.count == 2
    writer.fold()
    writer.add([3], np.eye(1, 8, k=2, dtype=np.float32))
    writer.save()
    assert reader.reload_if_changed() is True
    assert reader.search(np.eye(3, 8, dtype=np.float32), k=1, space=TINY).ids[:, 0].tolist() == [1, 2, 3]


def test_rebuild_of_an_empty_database_removes_the_index(settings):
    store = open_store(settings)
    index = PatternIndex.open(settings, store)
    held = index.space(TINY, create=True)
    held.add([1], np.ones((1, 8), dtype=np.float32))
    held.save()
    held.fold()
    assert held.main_path.exists()
    assert index.rebuild_from_db(store) == 0
    assert not list(settings.index_dir.glob("*.faiss"))
    assert PatternIndex.open(settings).spaces() == []
    assert PatternIndex.open(settings).check(store).ok


@pytest.mark.parametrize("pattern_filter", [PatternFilter(layer=0), PatternFilter(first_token_correct=False)])
def test_selector_and_over_fetch_give_the_same_filtered_results(tmp_path, pattern_filter):
    results = {}
    compressed = {
        "flat_max_vectors": 100,
        "ivf_lists": 8,
        "pq_bytes": 8,
        "train_sample": 400,
        "rerank_factor": 200,
    }
    for fraction in (1.0, 1e-6):  # always the id selector; always over-fetch
        settings = Settings(
            data_dir=tmp_path / "data", index={**compressed, "overfetch_min_fraction": fraction}
        )
        store = open_store(settings)
        if fraction == 1.0:
            atlas = fill_atlas(store, n_inferences=240)
            PatternIndex.open(settings, store).rebuild_from_db(store)
            assert PatternIndex.open(settings).space(TINY).kind == "ivfpq"
        with store.session() as session:
            allowed = matching_pattern_ids(session, pattern_filter)
        _, vectors = _of(atlas, "tiny")
        results[fraction] = PatternIndex.open(settings, store).search(
            vectors[:6], k=7, filter_ids=allowed, space=TINY
        )
    assert np.isin(results[1.0].ids, allowed).all()
    assert np.array_equal(results[1.0].ids, results[1e-6].ids)
    np.testing.assert_allclose(results[1.0].scores, results[1e-6].scores, rtol=1e-5)
