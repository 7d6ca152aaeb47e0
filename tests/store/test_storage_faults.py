"""A full or read-only data dir gives a clear error and leaves nothing half-written.

"Full" is a real write limit (RLIMIT_FSIZE: the kernel refuses to grow a file past it, as a full disk
refuses to), set in a subprocess so that it binds the code under test only. "Read-only" is a folder without
write permission; when the tests run as root the subprocess drops every capability first (`setpriv`, from
util-linux), since root with CAP_DAC_OVERRIDE ignores permissions.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, copy_atlas

pytestmark = pytest.mark.slow


def run_python(code: str, *, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", textwrap.dedent(code)]
    if unprivileged and os.geteuid() == 0:
        command = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)


def counts(db: Path) -> tuple[int, int, str]:
    with sqlite3.connect(db) as c:
        return (
            c.execute("select count(*) from inference").fetchone()[0],
            c.execute("select count(*) from head_pattern").fetchone()[0],
            c.execute("pragma integrity_check").fetchone()[0],
        )


@pytest.fixture
def atlas_dir(tiny_atlas, tmp_path) -> Path:
    data = tmp_path / "data"
    copy_atlas(tiny_atlas[0].data_dir, data)
    return data


def test_a_full_disk_rolls_the_write_back_and_says_so(atlas_dir):
    before = counts(atlas_dir / "attnlens.db")
    done = run_python(f"""
        import resource
        import numpy as np
        from attnlens.config import Settings
        from attnlens.errors import StorageUnavailable
        from attnlens.heads import HeadRef
        from attnlens.store import open_store
        from attnlens.store.patterns import STAT_COLUMNS, save_inference_with_heads

        store = open_store(Settings(data_dir={str(atlas_dir)!r}))
        # The limit binds each file: a little above the largest the database has (the disk is nearly full).
        size = max(p.stat().st_size for p in store.settings.data_dir.glob("attnlens.db*"))
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 64_000, size + 64_000))
        heads = [HeadRef(h // 64, h % 64) for h in range(512)]
        rng = np.random.default_rng(0)
        try:
            save_inference_with_heads(
                store,
                inference=dict(model_name="tiny-starcoder2", prompt_ids=list(range(16)), completion_text="x",
                               completion_ids=[1], first_token_correct=True, embedder="e"),
                heads=heads,
                embeddings=rng.standard_normal((512, 32)).astype(np.float32),
                thumbnails=rng.integers(0, 256, (512, 64, 64)).astype(np.uint8),  # 2 MiB: over the limit
                stats={{name: rng.random(512) for name in STAT_COLUMNS}},
            )
        except StorageUnavailable as exc:
            print("REFUSED", exc.status, exc.message)
        """)  # fmt: skip
    assert "REFUSED 503" in done.stdout, done.stdout + done.stderr[-3000:]
    assert "cannot be written" in done.stdout and "Nothing of this change was kept" in done.stdout
    assert counts(atlas_dir / "attnlens.db") == before  # nothing half-written; the database is sound


def test_a_full_disk_during_an_index_save_keeps_the_old_index(atlas_dir):
    index_dir = atlas_dir / "index"
    before = {p.name: p.read_bytes() for p in index_dir.glob("*.faiss")}
    done = run_python(f"""
        import resource
        from attnlens.config import Settings
        from attnlens.errors import StorageUnavailable
        from attnlens.index import PatternIndex
        from attnlens.store import open_store

        settings = Settings(data_dir={str(atlas_dir)!r})
        store = open_store(settings)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            PatternIndex.open(settings, store).rebuild_from_db(store)
        except StorageUnavailable as exc:
            print("REFUSED", exc.status, exc.message)
        """)  # fmt: skip
    assert "REFUSED 503" in done.stdout and "the previous one is intact" in done.stdout, done.stderr[-3000:]
    assert {p.name: p.read_bytes() for p in index_dir.glob("*.faiss")} == before
    assert not list(index_dir.glob("*.tmp"))


def test_a_read_only_data_dir_is_refused_at_start_with_what_to_do(atlas_dir):
    before = counts(atlas_dir / "attnlens.db")
    folders = [atlas_dir, *[p for p in atlas_dir.rglob("*") if p.is_dir()]]
    try:
        for folder in folders:
            folder.chmod(0o555)
        done = run_python(
            f"from attnlens.cli import main; main(['--data-dir', {str(atlas_dir)!r}, 'atlas', 'status'])",
            unprivileged=True,
        )
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert done.returncode == 2, (done.stdout, done.stderr[-2000:])
    assert "is not writable" in done.stderr and "ATTNLENS_DATA_DIR" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert counts(atlas_dir / "attnlens.db") == before
