"""`attnlens atlas build` as users run it, killed with SIGKILL half-way and run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from attnlens.index import PatternIndex
from attnlens.store import open_store
from attnlens.store.models import HeadPattern, Inference, Job
from tests.atlas.test_build import _snapshot
from tests.conftest import JAVA_FIXTURES, TINY_TASKS, tiny_settings

pytestmark = pytest.mark.slow
ATTNLENS = Path(sys.executable).with_name("attnlens")


def _command(data_dir: Path, apmae: Path) -> list[str]:
    return [
        str(ATTNLENS), "--data-dir", str(data_dir), "atlas", "build", "--corpus", str(JAVA_FIXTURES),
        "--model", "tiny-starcoder2", "--checkpoint", str(apmae), "--per-task", "3",
        "--tasks", ",".join(TINY_TASKS), "--batch-size", "1",
    ]  # fmt: skip


def test_kill_9_then_rerun_finishes_without_loss_or_duplicates(tmp_path, tiny_apmae_folder, tiny_atlas):
    _, reference_store, reference = tiny_atlas
    data = tmp_path / "data"
    env = {**os.environ, "ATTNLENS_MODEL__DEVICE": "cpu", "ATTNLENS_APMAE__DEVICE": "cpu"}
    first = subprocess.Popen(
        _command(data, tiny_apmae_folder), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    store = open_store(tiny_settings(data, tiny_apmae_folder))
    deadline = time.monotonic() + 300
    done = 0
    while time.monotonic() < deadline and first.poll() is None:
        with store.session() as s:
            done = s.scalar(select(func.count()).select_from(Inference)) or 0
        if done >= 3:
            break
        time.sleep(0.05)
    assert first.poll() is None, first.stdout.read().decode()[-3000:]
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    with store.session() as s:
        after_kill = s.scalar(select(func.count()).select_from(Inference))
    assert 3 <= after_kill < reference.processed

    second = subprocess.run(
        _command(data, tiny_apmae_folder), env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr[-3000:]
    result = json.loads(second.stdout[second.stdout.index("{") :])
    assert result["state"] == "succeeded"
    assert result["already_done"] == after_kill and result["processed"] == reference.processed - after_kill

    mine, theirs = _snapshot(store), _snapshot(reference_store)
    assert len(mine) == len(theirs) == reference.processed * 16
    assert [row[:7] for row in mine] == [row[:7] for row in theirs]  # same scenarios, completions, heads
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Inference)) == reference.processed
        assert s.scalar(select(func.count()).select_from(HeadPattern)) == reference.processed * 16
        jobs = s.scalars(select(Job)).all()
    assert len(jobs) == 1 and jobs[0].state == "succeeded" and jobs[0].attempts == 2
    report = PatternIndex.open(tiny_settings(data, tiny_apmae_folder), store).check(store)
    assert report.ok, report.summary()
    assert report.index_count == reference.processed * 16

    status = subprocess.run(
        [str(ATTNLENS), "--data-dir", str(data), "atlas", "status"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0 and f'"inferences": {reference.processed}' in status.stdout
