"""A damaged, missing or lagging index is detected when the app opens it and rebuilt from the database (the
source of truth), each repair logged with its reason; an index damaged while the app runs is a 503 that
says what to do, never a 500. Real SQLite and FAISS files; the fake atlas holds two embedding spaces."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from attnlens.atlas.indexing import open_repaired_index
from attnlens.errors import IndexDamaged, IndexMissing
from attnlens.index import IndexSpace, PatternIndex
from attnlens.store import open_store
from tests.index.space_rows import add_inferences
from tests.store.fake_atlas import fill_atlas

TINY, OTHER = IndexSpace("tiny", None), IndexSpace("other", None)


@pytest.fixture
def built(settings):
    """A store with two spaces and an index of each (main files folded, plus a delta for TINY)."""
    store = open_store(settings)
    atlas = fill_atlas(store, n_inferences=30)
    index = PatternIndex.open(settings, store)
    index.rebuild_from_db(store)
    return store, atlas


def assert_whole(settings, store, index: PatternIndex) -> None:
    report = index.check(store)
    assert report.ok, report.summary()
    again = PatternIndex.open(settings, store)  # what the next process reads
    assert again.check(store).ok and again.count == index.count


def damage(settings, how: str) -> None:
    index = PatternIndex.open(settings)
    main = index.space(TINY).main_path
    if how == "torn main file":
        main.write_bytes(main.read_bytes()[: main.stat().st_size // 2])
    elif how == "empty main file":
        main.write_bytes(b"")
    elif how == "random bytes":
        main.write_bytes(np.random.default_rng(0).bytes(main.stat().st_size))
    elif how == "missing main file":
        main.unlink()
    elif how == "unreadable manifest":
        (settings.index_dir / "manifest.json").write_text('{"spaces": [{"model": ')
    elif how == "manifest of another format":
        (settings.index_dir / "manifest.json").write_text('{"spaces": [{"colour": "blue"}]}')
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "torn main file",
        "empty main file",
        "random bytes",
        "missing main file",
        "unreadable manifest",
        "manifest of another format",
    ],
)
def test_a_damaged_index_is_rebuilt_from_the_database_when_opened(settings, built, how, caplog):
    store, atlas = built
    damage(settings, how)
    with caplog.at_level(logging.WARNING, logger="attnlens.atlas.indexing"):
        index = open_repaired_index(settings, store)
    assert_whole(settings, store, index)
    assert index.count == len(atlas.pattern_ids)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and any("rebuild" in w for w in warnings), warnings
    if "manifest" in how:
        assert (settings.index_dir / "manifest.json.damaged").is_file()  # kept for a post-mortem
    # the undamaged space answers as before; the damaged one finds each pattern itself
    query = atlas.embeddings[atlas.models == "tiny"][:1]
    hit = index.search(query, k=1, space=TINY)
    assert int(hit.ids[0, 0]) == int(atlas.pattern_ids[atlas.models == "tiny"][0])


def test_a_lost_delta_file_is_found_by_counting_and_rebuilt(settings, built, caplog):
    store, atlas = built
    extra, _ = add_inferences(store, model="tiny", embedder=None, dim=32, n=2, seed=5)  # next sync: a delta
    index = open_repaired_index(settings, store)
    held = index.space(TINY)
    assert held.delta_count > 0
    held.delta_path.unlink()  # the manifest still says the index reflects those inferences
    with caplog.at_level(logging.WARNING, logger="attnlens.atlas.indexing"):
        repaired = open_repaired_index(settings, store)
    assert any("out of step with the database" in r.getMessage() for r in caplog.records)
    assert repaired.count == len(atlas.pattern_ids) + len(extra)
    assert_whole(settings, store, repaired)


def test_a_lagging_index_is_caught_up_without_a_rebuild(settings, built, caplog):
    store, atlas = built
    # a build committed these, then died before its sync
    extra, _ = add_inferences(store, model="tiny", embedder=None, dim=32, n=3, seed=7)
    with caplog.at_level(logging.WARNING, logger="attnlens.atlas.indexing"):
        index = open_repaired_index(settings, store)
    assert index.count == len(atlas.pattern_ids) + len(extra)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == []
    assert_whole(settings, store, index)


def test_a_sound_index_is_opened_as_it_is(settings, built, caplog):
    store, _ = built
    before = {p.name: p.stat().st_mtime_ns for p in settings.index_dir.iterdir()}
    with caplog.at_level(logging.WARNING):
        open_repaired_index(settings, store)
    assert {p.name: p.stat().st_mtime_ns for p in settings.index_dir.iterdir()} == before
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_damage_while_running_is_a_503_that_says_what_to_do(settings, built):
    store, atlas = built
    index = open_repaired_index(settings, store)
    damage(settings, "torn main file")
    fresh = PatternIndex.open(settings, store)
    with pytest.raises(IndexDamaged, match="restart the app or run `attnlens index rebuild`") as damaged:
        fresh.search(atlas.embeddings[:1], k=1, space=TINY)
    assert damaged.value.status == 503
    damage(settings, "missing main file")
    with pytest.raises(IndexMissing) as missing:
        PatternIndex.open(settings, store).search(atlas.embeddings[:1], k=1, space=TINY)
    assert missing.value.status == 503
    del index
