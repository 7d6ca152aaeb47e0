"""Writers that meet: pastes (and queued experiments) through the API while an atlas build commits in
another process, on SQLite and on PostgreSQL: every request succeeds (no "database is locked"), every
accepted paste is stored exactly once, and the build still finishes whole."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from attnlens.api import create_app
from attnlens.config import Settings
from attnlens.service.local import LocalWorker
from attnlens.store import open_store
from attnlens.store.models import PASTED, HeadPattern, Inference
from tests.conftest import JAVA_FIXTURES, REPO, TINY_TASKS, tiny_settings

pytestmark = pytest.mark.slow
MIN_PASTES_DURING_BUILD = 3
CODE = """public class Sum{i} {{
    public int total(int[] values) {{
        int sum = {i};
        for (int value : values) {{
            sum += value;
        }}
        return sum;
    }}
}}
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def settings_of_backend(request, tmp_path, tiny_apmae_folder) -> Settings:
    settings = tiny_settings(tmp_path / "data", tiny_apmae_folder)
    if request.param == "postgresql":
        settings = settings.model_copy(update={"db": request.getfixturevalue("pg_settings").db})
    return settings


def start_build(settings: Settings, apmae: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "ATTNLENS_MODEL__DEVICE": "cpu",
        "ATTNLENS_APMAE__DEVICE": "cpu",
    }
    if settings.db.url:
        env["ATTNLENS_DB__URL"] = settings.db.url
    command = [
        sys.executable, "-m", "worker", "--data-dir", str(settings.data_dir), "atlas", "build",
        "--corpus", str(JAVA_FIXTURES), "--model", "tiny-starcoder2", "--checkpoint", apmae,
        "--per-task", "3", "--tasks", ",".join(TINY_TASKS), "--batch-size", "1",
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_pastes_while_a_build_commits_all_succeed_and_are_stored_once(settings_of_backend, tiny_apmae_folder):
    settings = settings_of_backend
    store = open_store(settings)  # migrated before the build starts, as `attnlens serve` would have done
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    client = TestClient(create_app(settings, worker, store))
    build = start_build(settings, str(tiny_apmae_folder))
    accepted: list[int] = []
    failures: list[str] = []
    during = 0
    i = 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        building = build.poll() is None
        response = client.post("/api/analyze", json={"code": CODE.format(i=i)})
        if response.status_code == 200:
            accepted.append(response.json()["inference_id"])
            during += building
        else:
            failures.append(f"paste {i}: {response.status_code} {response.text[:200]}")
        if i % 4 == 0:
            queued = client.post(
                "/api/experiments",
                json={"task": "identifiers", "rules": ["random"], "n": [1], "scenarios": 2, "corpus": "demo"},
            )
            if queued.status_code != 202:
                failures.append(f"experiment {i}: {queued.status_code} {queued.text[:200]}")
        i += 1
        if not building and during >= MIN_PASTES_DURING_BUILD:
            break
    _, err = build.communicate(timeout=60)
    assert build.returncode == 0, err[-3000:]
    assert failures == []
    assert during >= MIN_PASTES_DURING_BUILD  # the writers did meet
    assert len(accepted) == len(set(accepted))
    with store.session() as s:
        pasted = s.scalars(select(Inference.id).where(Inference.source == PASTED)).all()
        mined = s.scalar(select(func.count()).select_from(Inference).where(Inference.source != PASTED))
        patterns = s.scalar(select(func.count()).select_from(HeadPattern))
    assert sorted(pasted) == sorted(accepted)  # each accepted paste once, none lost
    assert mined == 12 and patterns == (mined + len(pasted)) * 16  # the build finished whole
