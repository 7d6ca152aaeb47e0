"""An API client over the shared tiny atlas, with a real worker holding the tiny model."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from attnlens.api import create_app
from attnlens.service.local import LocalWorker
from attnlens.store import open_store
from tests.conftest import JAVA_FIXTURES_CORPUS
from tests.store.second_model import add_second_model
from tests.store.signal_atlas import build_predicted_atlas

OTHER_MODEL = "tiny-other"


@pytest.fixture(scope="module")
def atlas_client(tiny_atlas):
    settings, store, _report = tiny_atlas
    worker = LocalWorker(settings)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        yield client


@pytest.fixture(scope="module")
def private_atlas_client(tiny_atlas, tmp_path_factory):
    """A client over a private copy of the tiny atlas, for tests that add to it (analyses, fuzzing);
    the shared one stays as built."""
    settings, _, _ = tiny_atlas
    data = tmp_path_factory.mktemp("private-atlas") / "data"
    data.mkdir()
    with (
        sqlite3.connect(settings.data_dir / "attnlens.db") as source,
        sqlite3.connect(data / "attnlens.db") as copy,
    ):
        source.backup(copy)
    shutil.copytree(settings.index_dir, data / "index")
    mine = settings.model_copy(update={"data_dir": data})
    store = open_store(mine)
    worker = LocalWorker(mine, store)
    worker.start(background=False)
    with TestClient(create_app(mine, worker, store)) as client:
        yield client


@pytest.fixture(scope="package")
def full_atlas(tiny_atlas, tmp_path_factory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """A client over a private predicted atlas with a map, a finished experiment and a report, and the real
    ids of each kind of thing in it (`experiment_job_id` included). Built once for the API tests (the fuzz
    and export tests), slow: UMAP, CatBoost."""
    from attnlens.api import create_app
    from attnlens.atlas.handlers import JOB_HANDLERS
    from attnlens.contracts.findings import FINDINGS_REPORT
    from attnlens.contracts.jobs import ABLATION_EXPERIMENT, ATLAS_MAP, PATTERN_FAMILIES
    from attnlens.contracts.models import PRESETS, ModelPreset, register_preset
    from attnlens.service.jobs import run_job_here
    from attnlens.service.local import LocalWorker
    from attnlens.store.head_moments import head_task_moments, model_embedders
    from attnlens.store.jobs import enqueue_job

    settings, store = build_predicted_atlas(tiny_atlas[0], tmp_path_factory.mktemp("fuzz") / "data")
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        experiment = client.post(
            "/api/experiments",
            json={"task": "identifiers", "rules": ["random", "top_positive"], "n": [1, 4], "scenarios": 3,
                  "corpus": JAVA_FIXTURES_CORPUS},
        )  # fmt: skip
        assert experiment.status_code == 202, experiment.text
        jobs = [
            (ATLAS_MAP, enqueue_job(store, ATLAS_MAP, {})),
            (PATTERN_FAMILIES, enqueue_job(store, PATTERN_FAMILIES, {})),
            (ABLATION_EXPERIMENT, experiment.json()["id"]),
            (FINDINGS_REPORT, client.post("/api/findings", json={"reconstruction": False}).json()["id"]),
        ]
        for kind, job_id in jobs:
            done = run_job_here(settings, store, job_id, worker if kind != FINDINGS_REPORT else None,
                                JOB_HANDLERS[kind])  # fmt: skip
            assert done.state == "succeeded", (kind, done.error)
        # A second model embedded by the same checkpoint on the same tasks, so that the cross-model reads
        # have a model to compare with (`other`); written last, so that the jobs above saw one model.
        with store.session() as session:
            (embedder,) = model_embedders(session, settings.model.name)
            moments = head_task_moments(session, settings.model.name, embedder)
        add_second_model(store, OTHER_MODEL, n=4 * len(moments.tasks), embedder=embedder,
                         dim=moments.means.shape[2], tasks=moments.tasks)  # fmt: skip
        # Its token ids are the tiny tokenizer's: registered as a `tiny` preset (for this fixture's life) the
        # server can show its tokens, as it can for any model whose tokenizer it has.
        register_preset(
            ModelPreset(OTHER_MODEL, "tiny", "starcoder2", "a second tiny model, for the API tests")
        )
        inference = client.get("/api/inferences", params={"limit": 1}).json()["items"][0]["id"]
        pattern = client.get(f"/api/inferences/{inference}/heads").json()["heads"][0]["id"]
        ids = {
            "inference_id": inference,
            "pattern_id": pattern,
            "predictor_id": client.get("/api/predictors").json()[0]["id"],
            "job_id": jobs[2][1],
            "experiment_job_id": jobs[2][1],
            "name": "L2H1",
            "label": 0,  # pattern family 0, the largest
            "model": settings.model.name,  # GET /api/atlas/models/{model}
            "other": OTHER_MODEL,  # the `other` query parameter of GET /api/cross-model
        }
        try:
            yield client, ids
        finally:
            del PRESETS[OTHER_MODEL]
