"""`attnlens db` and `attnlens index`, run in-process through the real command-line app."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from attnlens.cli import app
from attnlens.config import Settings
from attnlens.index import IndexSpace, PatternIndex
from attnlens.store import open_store
from tests.store.fake_atlas import fill_atlas

runner = CliRunner()
TINY = IndexSpace("tiny", None)


def attnlens(settings: Settings, *args: str):
    return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args])


def test_db_status_and_upgrade(settings):
    before = attnlens(settings, "db", "status")
    assert before.exit_code == 1
    assert "empty" in before.output and "attnlens db upgrade" in before.output
    assert attnlens(settings, "db", "upgrade").exit_code == 0
    after = attnlens(settings, "db", "status")
    assert after.exit_code == 0, after.output


def test_index_rebuild_then_check_then_a_broken_index_fails_check(settings):
    store = open_store(settings)
    atlas = fill_atlas(store, n_inferences=10)
    missing = attnlens(settings, "index", "check")
    assert missing.exit_code == 1 and "no index file" in missing.output

    rebuilt = attnlens(settings, "index", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"from {len(atlas.pattern_ids)} head patterns" in rebuilt.output
    checked = attnlens(settings, "index", "check")
    assert checked.exit_code == 0, checked.output
    assert "OK" in checked.output and "2 embedding spaces" in checked.output

    held = PatternIndex.open(settings).space(TINY)
    held.remove(atlas.pattern_ids[atlas.models == "tiny"][:2])
    held.save()
    broken = attnlens(settings, "index", "check")
    assert broken.exit_code == 1
    assert "missing from the index: 2" in broken.output and "attnlens index rebuild" in broken.output

    main = PatternIndex.open(settings).space(TINY).main_path
    main.write_bytes(b"not a faiss index")
    torn = attnlens(settings, "index", "check")
    assert torn.exit_code == 1 and "unreadable" in torn.output
    (settings.index_dir / "manifest.json").write_text("{")
    assert "unreadable" in attnlens(settings, "index", "check").output
    assert attnlens(settings, "index", "rebuild").exit_code == 0
    assert attnlens(settings, "index", "check").exit_code == 0
    index = PatternIndex.open(settings)
    assert np.array_equal(
        np.sort(np.concatenate([index.space(s).ids() for s in index.spaces()])), np.sort(atlas.pattern_ids)
    )


def test_index_info_names_each_space_with_kind_size_and_delta(settings):
    open_store(settings)
    held = PatternIndex.open(settings).space(TINY, create=True)
    held.add([3, 4], np.eye(2, 8, dtype=np.float32))
    held.save()
    held.fold()
    held.add([5], np.eye(1, 8, dtype=np.float32))
    held.save()
    shown = attnlens(settings, "index", "info")
    assert shown.exit_code == 0, shown.output
    assert "tiny / (no embedder): flat, 2 + 1 (delta) vectors, dim=8" in shown.output
