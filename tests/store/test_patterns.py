"""Head patterns: bulk writes, compact encodings that round-trip, and the filters searches use."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef
from attnlens.store import open_store
from attnlens.store.codecs import (
    pack_thumbnail,
    unpack_embedding,
    unpack_thumbnail,
)
from attnlens.store.models import HeadPattern, Inference
from attnlens.store.patterns import (
    STAT_COLUMNS,
    PatternFilter,
    iter_embedding_batches,
    load_embeddings,
    matching_pattern_ids,
    save_head_patterns,
    save_inference,
)
from tests.store.fake_atlas import fill_atlas


def test_thumbnail_lower_triangle_round_trips_and_is_half_the_size():
    image = np.tril(np.random.default_rng(0).integers(0, 256, (32, 32))).astype(np.uint8)
    blob = pack_thumbnail(image)
    assert len(blob) == 32 * 33 // 2 == 528
    assert np.array_equal(unpack_thumbnail(blob, 32), image)


def test_head_patterns_round_trip(settings):
    store = open_store(settings)
    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((2, 128)).astype(np.float32)
    thumbnails = np.tril(rng.integers(0, 256, (2, 32, 32))).astype(np.uint8)
    stats = {
        "entropy": [0.1, 0.2],
        "diagonal_mass": [0.3, 0.4],
        "previous_token_mass": [0.5, 0.6],
        "first_token_mass": [0.7, 0.8],
        "local_mass": [0.9, 1.0],
    }
    with store.session() as session:
        inference_id = save_inference(session, model_name="tiny", prompt_ids=[1, 2, 3], completion_ids=[4])
        ids = save_head_patterns(
            session, inference_id, [HeadRef(0, 1), HeadRef(3, 2)], embeddings, thumbnails, stats
        )
    with store.session() as session:
        rows = [session.get(HeadPattern, i) for i in ids]
        assert [r.head_ref.name for r in rows] == ["L0H1", "L3H2"]
        np.testing.assert_allclose(unpack_embedding(rows[1].embedding), embeddings[1], rtol=1e-3, atol=1e-3)
        assert np.array_equal(unpack_thumbnail(rows[1].thumbnail, rows[1].thumbnail_size), thumbnails[1])
        assert (rows[1].entropy, rows[1].local_mass) == (0.2, 1.0)
        assert [p.id for p in session.get(Inference, inference_id).head_patterns] == ids


def check_bulk_write_round_trips(store) -> None:
    """Every column of many head patterns comes back as written, ids in input order: the bulk paths
    (a Core insert on SQLite, COPY on PostgreSQL) must agree (the test runs on both)."""
    rng = np.random.default_rng(2)
    heads = [HeadRef(layer, head) for layer in range(5) for head in range(8)]
    n = len(heads)
    embeddings = rng.standard_normal((n, 16)).astype(np.float32)
    thumbnails = np.tril(rng.integers(0, 256, (n, 8, 8))).astype(np.uint8)
    stats = {name: rng.random(n) for name in STAT_COLUMNS}
    stats["induction_mass"] = rng.random(n)  # one relational score computed, the others unknown (None)
    stats["induction_mass"][3] = float("nan")  # "does not apply" for this head
    errors = rng.random(n)
    with store.session() as session:
        inference_id = save_inference(session, model_name="tiny", prompt_ids=[1, 2, 3], completion_ids=[4])
        ids = save_head_patterns(session, inference_id, heads, embeddings, thumbnails, stats, errors)
        nothing = {name: [] for name in STAT_COLUMNS}
        assert save_head_patterns(session, inference_id, [], embeddings[:0], thumbnails[:0], nothing) == []
    assert len(set(ids)) == n
    with store.session() as session:
        rows = [session.get(HeadPattern, i) for i in ids]
        assert [r.head_ref for r in rows] == heads
        np.testing.assert_array_equal(
            np.stack([unpack_embedding(r.embedding) for r in rows]), embeddings.astype(np.float16)
        )
        assert all(
            np.array_equal(unpack_thumbnail(r.thumbnail, r.thumbnail_size), t)
            for r, t in zip(rows, thumbnails, strict=True)
        )
        for name in STAT_COLUMNS:
            assert [getattr(r, name) for r in rows] == stats[name].tolist()
        induction = [r.induction_mass for r in rows]
        assert induction[3] is None and induction[:3] == stats["induction_mass"][:3].tolist()  # NULL on both
        assert {r.bracket_mass for r in rows} == {None}
        assert [r.reconstruction_error for r in rows] == errors.tolist()
        assert all(r.inference_id == inference_id for r in rows)


def test_bulk_write_round_trips(settings):
    check_bulk_write_round_trips(open_store(settings))


def test_head_patterns_reject_mismatched_shapes(settings):
    store = open_store(settings)
    with pytest.raises(InvalidInput, match="thumbnails"), store.session() as session:
        inference_id = save_inference(session, model_name="tiny", prompt_ids=[1])
        save_head_patterns(
            session,
            inference_id,
            [HeadRef(0, 0)],
            np.zeros((1, 8)),
            np.zeros((1, 4, 5), dtype=np.uint8),
            {
                n: [0.0]
                for n in ("entropy", "diagonal_mass", "previous_token_mass", "first_token_mass", "local_mass")
            },
        )


def test_an_inference_needs_a_scenario_or_a_prompt(settings):
    store = open_store(settings)
    with pytest.raises(InvalidInput, match="prompt_ids"), store.session() as session:
        save_inference(session, model_name="tiny")


@pytest.mark.parametrize(
    "pattern_filter",
    [
        PatternFilter(layer=1),
        PatternFilter(layer=0, head=2),
        PatternFilter(task="closing_bracket"),
        PatternFilter(first_token_correct=True),
        PatternFilter(span_correct=False, model_name="tiny"),
        PatternFilter(model_name="other"),
        PatternFilter(layer=1, head=0, task="identifier", first_token_correct=False, model_name="tiny"),
    ],
)
def test_filters_select_exactly_the_matching_patterns(settings, pattern_filter):
    store = open_store(settings)
    atlas = fill_atlas(store)
    keep = np.ones(len(atlas.pattern_ids), dtype=bool)
    f = pattern_filter
    if f.layer is not None:
        keep &= atlas.layers == f.layer
    if f.head is not None:
        keep &= atlas.heads == f.head
    if f.task is not None:
        keep &= atlas.tasks == f.task
    if f.first_token_correct is not None:
        keep &= atlas.correct == f.first_token_correct
    if f.span_correct is not None:
        keep &= atlas.correct == f.span_correct
    if f.model_name is not None:
        keep &= atlas.models == f.model_name
    with store.session() as session:
        got = matching_pattern_ids(session, pattern_filter)
    assert 0 < keep.sum() < len(keep)
    assert np.array_equal(got, np.sort(atlas.pattern_ids[keep]))


def test_embeddings_load_in_the_order_asked_and_stream_in_id_order(settings):
    store = open_store(settings)
    atlas = fill_atlas(store, n_inferences=5)
    order = atlas.pattern_ids[::-1]
    with store.session() as session:
        loaded = load_embeddings(session, order)
        batches = list(iter_embedding_batches(session, batch_size=7))
        with pytest.raises(InvalidInput, match="no head pattern"):
            load_embeddings(session, [10**9])
    np.testing.assert_allclose(loaded, atlas.embeddings[::-1], rtol=2e-3, atol=2e-3)
    streamed = np.concatenate([ids for ids, _ in batches])
    assert np.array_equal(streamed, np.sort(atlas.pattern_ids))
    assert all(len(ids) <= 7 for ids, _ in batches)
