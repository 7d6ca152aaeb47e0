"""`attnlens db` and `attnlens index`, run in-process through the real command-line app."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from attnlens.cli import app
from attnlens.config import Settings
from attnlens.index import PatternIndex
from attnlens.store import open_store
from tests.store.fake_atlas import fill_atlas

runner = CliRunner()


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
    assert "OK" in checked.output

    index = PatternIndex.open(settings)
    index.remove(atlas.pattern_ids[:2])
    index.save()
    broken = attnlens(settings, "index", "check")
    assert broken.exit_code == 1
    assert "missing from the index: 2" in broken.output and "attnlens index rebuild" in broken.output

    index.path.write_bytes(b"not a faiss index")
    torn = attnlens(settings, "index", "check")
    assert torn.exit_code == 1 and "unreadable" in torn.output
    assert attnlens(settings, "index", "rebuild").exit_code == 0
    assert attnlens(settings, "index", "check").exit_code == 0
    assert np.array_equal(PatternIndex.open(settings).ids(), np.sort(atlas.pattern_ids))


def test_index_info_names_kind_and_size(settings):
    open_store(settings)
    index = PatternIndex.open(settings)
    index.add([3, 4], np.eye(2, 8, dtype=np.float32))
    index.save()
    shown = attnlens(settings, "index", "info")
    assert shown.exit_code == 0
    assert "flat, 2 vectors, dim=8" in shown.output
