"""One index per embedding space (model, embedder), and incremental adds (issue 12, defects 4 and 5).

Spaces never mix: two checkpoints of different widths both get searchable indexes, and a search returns
only patterns of its own space even where another space's vectors would be nearer. A paste's sync writes
only its space's small delta file (the main file untouched, never even read), a reader reloads only that
file, folding keeps every id once, deletions leave the index, and a crash at any write heals."""

from __future__ import annotations

import multiprocessing
import os

import faiss
import numpy as np
import pytest
from typer.testing import CliRunner

import attnlens.index.space_index as space_index_module
from attnlens.atlas.indexing import sync_index
from attnlens.cli import app
from attnlens.config import Settings
from attnlens.errors import IndexDimensionMismatch
from attnlens.index import IndexSpace, PatternIndex
from attnlens.store import open_store
from attnlens.store.models import Inference
from attnlens.store.patterns import load_embeddings
from tests.index.space_rows import add_inferences

A = IndexSpace("smollm2", "ckpt-a")  # 32-d
B = IndexSpace("smollm2", "ckpt-b")  # 16-d: another checkpoint, another width
C = IndexSpace("smollm2", "ckpt-c")  # 32-d like A, and around A's very centres
runner = CliRunner()


def exact_neighbours(store, query_vectors, candidate_ids, k):
    with store.session() as session:
        candidates = load_embeddings(session, candidate_ids)
    queries = np.ascontiguousarray(query_vectors, dtype=np.float32).copy()
    faiss.normalize_L2(queries)
    faiss.normalize_L2(candidates)
    order = np.argsort(-(queries @ candidates.T), axis=1, kind="stable")[:, :k]
    return np.asarray(candidate_ids)[order]


def small_delta(tmp_path, delta_max: int) -> Settings:
    return Settings(data_dir=tmp_path / "data", index={"delta_max_vectors": delta_max})


def in_space(store, space: IndexSpace, n: int, dim: int, seed: int):
    return add_inferences(store, model=space.model, embedder=space.embedder, dim=dim, n=n, seed=seed)


def test_two_checkpoints_of_different_widths_get_their_own_searchable_indexes(settings):
    store = open_store(settings)
    a_ids, a_vectors = in_space(store, A, 20, 32, seed=1)
    b_ids, b_vectors = in_space(store, B, 20, 16, seed=2)
    # C's patterns sit on A's centres: in one shared index they would be A's nearest neighbours.
    centres = np.random.default_rng(1000 + 32).standard_normal((9, 32)).astype(np.float32) * 3
    c_ids, c_vectors = add_inferences(
        store, model=C.model, embedder=C.embedder, dim=32, n=20, centres=centres
    )

    result = sync_index(settings, store)
    assert result["added"] == len(a_ids) + len(b_ids) + len(c_ids)
    index = PatternIndex.open(settings, store)
    assert index.spaces() == [A, B, C]
    assert (index.space(A).dim, index.space(B).dim, index.space(C).dim) == (32, 16, 32)
    report = index.check(store)
    assert report.ok, report.summary()

    for space, ids, vectors in ((A, a_ids, a_vectors), (B, b_ids, b_vectors), (C, c_ids, c_vectors)):
        found = index.search(vectors[:6], k=12, space=space)
        assert np.isin(found.ids, ids).all()  # never a pattern of another space
        assert np.array_equal(found.ids, exact_neighbours(store, vectors[:6], ids, 12))
    # A filter that admits every space's ids still returns only the searched space's.
    everything = np.concatenate([a_ids, b_ids, c_ids])
    assert np.isin(index.search(a_vectors[:3], k=30, filter_ids=everything, space=A).ids, a_ids).all()
    with pytest.raises(IndexDimensionMismatch):
        index.search(a_vectors[:1], k=3, space=B)


def _main_stamp(path):
    stat = path.stat()
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size, path.read_bytes())


def test_a_paste_writes_only_the_small_delta_and_its_patterns_are_found(tmp_path, monkeypatch):
    settings = small_delta(tmp_path, 500)
    store = open_store(settings)
    in_space(store, A, 100, 32, seed=1)  # 900 patterns: more than the delta takes, so a main index
    assert sync_index(settings, store)["added"] == 900
    reader = PatternIndex.open(settings, store)  # as the API holds it
    held = reader.space(A)
    assert held.main_count == 900 and held.delta_count == 0 and not held.delta_path.exists()
    main_path = held.main_path
    before = _main_stamp(main_path)
    main_object = held.main_index()

    read = []
    original = space_index_module.read_index
    monkeypatch.setattr(space_index_module, "read_index", lambda path: read.append(path) or original(path))
    new_ids, new_vectors = in_space(store, A, 1, 32, seed=7)  # one pasted inference: 9 patterns
    result = sync_index(settings, store)
    assert (result["added"], result["removed"], result["rebuilt"]) == (9, 0, False)
    assert main_path not in read  # the writer never read the main index
    assert _main_stamp(main_path) == before  # nor wrote it
    delta = PatternIndex.open(settings).space(A)
    assert delta.delta_path.exists() and delta.delta_count == 9
    assert delta.delta_path.stat().st_size < before[2] / 20
    assert sorted(p.name for p in settings.index_dir.glob("*.faiss")) == sorted(
        [main_path.name, delta.delta_path.name]
    )

    read.clear()
    assert reader.reload_if_changed()
    assert read == [delta.delta_path]  # the reader re-read the delta alone
    assert reader.space(A).main_index() is main_object
    found = reader.search(new_vectors, k=3, space=A)
    assert np.array_equal(found.ids[:, 0], new_ids)  # each added pattern is its own nearest
    assert sync_index(settings, store)["added"] == 0  # nothing new: nothing written
    assert PatternIndex.open(settings, store).check(store).ok


def test_folding_keeps_every_id_exactly_once_and_check_passes(tmp_path):
    settings = small_delta(tmp_path, 20)
    store = open_store(settings)
    in_space(store, A, 10, 32, seed=1)
    in_space(store, B, 2, 16, seed=2)  # 18 patterns: B stays a delta-only space
    sync_index(settings, store)
    generations = [PatternIndex.open(settings).space(A).entry.generation]
    for step in range(9):
        in_space(store, A, 5 if step == 5 else 1, 32, seed=10 + step)  # step 5: 45 rows go to the main
        sync_index(settings, store)
        index = PatternIndex.open(settings, store)
        held = index.space(A)
        main, delta = held.main_ids(), held.delta_ids()
        assert len(np.intersect1d(main, delta)) == 0 and len(np.unique(main)) == len(main)
        assert held.delta_count <= 20
        with store.session() as session:
            expected = np.sort([p.id for i in session.scalars(_inferences(A)) for p in i.head_patterns])
        assert np.array_equal(np.sort(np.concatenate([main, delta])), expected)
        report = index.check(store)
        assert report.ok, report.summary()
        generations.append(held.entry.generation)
    assert generations[-1] - generations[0] >= 3  # folded at least 3 times (delta full, or a big add)
    assert PatternIndex.open(settings).space(B).kind == "flat"
    assert PatternIndex.open(settings).space(B).main_count == 0

    data = ["--data-dir", str(settings.data_dir)]
    checked = runner.invoke(app, [*data, "index", "check"])
    assert checked.exit_code == 0, checked.output
    assert "OK" in checked.output and str(A) in checked.output and str(B) in checked.output
    assert runner.invoke(app, [*data, "index", "rebuild"]).exit_code == 0
    after = runner.invoke(app, [*data, "index", "check"])
    assert after.exit_code == 0, after.output
    assert PatternIndex.open(settings).space(A).delta_count == 0


def _inferences(space):
    from sqlalchemy import select

    return select(Inference).where(Inference.model_name == space.model, Inference.embedder == space.embedder)


def test_deleted_rows_leave_the_index_from_the_delta_and_from_the_main(tmp_path):
    settings = small_delta(tmp_path, 50)
    store = open_store(settings)
    in_space(store, A, 10, 32, seed=1)
    sync_index(settings, store)  # 90 > 50: a main index
    in_space(store, A, 2, 32, seed=2)
    sync_index(settings, store)  # 18 in the delta
    with store.session() as session:
        inferences = session.scalars(_inferences(A).order_by(Inference.id)).all()
        gone = [p.id for i in (inferences[0], inferences[-1]) for p in i.head_patterns]
        session.delete(inferences[0])  # its patterns are in the main index
        session.delete(inferences[-1])  # and these in the delta
    result = sync_index(settings, store)
    assert result["removed"] == 18
    index = PatternIndex.open(settings, store)
    assert not np.isin(gone, index.space(A).ids()).any()
    assert index.check(store).ok
    with store.session() as session:
        session.delete(session.scalars(_inferences(A)).first())
        session.delete(session.scalars(_inferences(A).order_by(Inference.id.desc())).first())
    sync_index(settings, store)
    assert PatternIndex.open(settings, store).check(store).ok


def _sync_then_crash(data_dir: str, delta_max: int, crash_at: int) -> None:
    settings = Settings(data_dir=data_dir, index={"delta_max_vectors": delta_max})
    calls = {"n": 0}
    real_replace = os.replace

    def replace(*args):
        calls["n"] += 1
        if calls["n"] == crash_at:
            os._exit(17)  # after the new file was written in full, before it takes the old one's place
        real_replace(*args)

    os.replace = replace
    sync_index(settings, open_store(settings))


@pytest.mark.parametrize(
    ("delta_max", "crash_at"),
    [(50, 1), (50, 2), (10, 1), (10, 2)],
    ids=["delta-write", "manifest-after-delta", "fold-main-write", "fold-manifest"],
)
def test_a_crash_at_any_write_of_a_sync_leaves_a_readable_index_that_the_next_sync_heals(
    tmp_path, delta_max, crash_at
):
    settings = small_delta(tmp_path, delta_max)
    store = open_store(settings)
    in_space(store, A, 10, 32, seed=1)
    sync_index(settings, store)
    in_space(store, A, 1, 32, seed=2)
    sync_index(settings, store)  # a main index and a 9-vector delta
    new_ids, new_vectors = in_space(store, A, 1, 32, seed=3)
    child = multiprocessing.get_context("fork").Process(
        target=_sync_then_crash, args=(str(settings.data_dir), delta_max, crash_at)
    )
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 17
    survivor = PatternIndex.open(settings, store)  # whatever was written, the files in force are whole
    held = survivor.space(A)
    assert len(held.ids()) in (99, 108)
    sync_index(settings, store)
    index = PatternIndex.open(settings, store)
    report = index.check(store)
    assert report.ok, report.summary()
    assert np.array_equal(index.search(new_vectors, k=1, space=A).ids[:, 0], new_ids)


def test_the_old_single_index_file_is_adopted_or_replaced(settings):
    store = open_store(settings)
    a_ids, a_vectors = in_space(store, A, 5, 32, seed=1)
    legacy = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    x = a_vectors.copy()
    faiss.normalize_L2(x)
    legacy.add_with_ids(x[:-9], a_ids[:-9])  # the old index lagged one inference behind
    settings.index_dir.mkdir(parents=True)
    faiss.write_index(legacy, str(settings.index_dir / "patterns.faiss"))
    assert not PatternIndex.open(settings, store).check(store).ok
    result = sync_index(settings, store)
    assert result["added"] == 9
    index = PatternIndex.open(settings, store)
    assert not index.legacy_path.exists() and index.space(A).main_count == 36
    assert index.check(store).ok

    # Two spaces in the database: the old file (which mixed them) is replaced by one index each.
    in_space(store, B, 2, 16, seed=2)
    faiss.write_index(legacy, str(settings.index_dir / "patterns.faiss"))
    for path in settings.index_dir.glob("smollm2*"):
        path.unlink()
    (settings.index_dir / "manifest.json").unlink()
    sync_index(settings, store)
    index = PatternIndex.open(settings, store)
    assert index.spaces() == [A, B] and not index.legacy_path.exists()
    assert index.check(store).ok


def test_rows_without_a_recorded_embedder_are_a_space_of_their_own(settings):
    store = open_store(settings)
    old_ids, old_vectors = add_inferences(store, model=A.model, embedder=None, dim=32, n=3, seed=1)
    a_ids, _ = in_space(store, A, 3, 32, seed=2)
    sync_index(settings, store)
    index = PatternIndex.open(settings, store)
    unrecorded = IndexSpace(A.model, None)
    assert index.spaces() == [unrecorded, A]
    assert np.isin(index.search(old_vectors, k=27, space=unrecorded).ids, old_ids).all()
    assert index.check(store).ok
