"""Real predictions end to end: the tiny atlas plus rows of `identifiers` whose correctness one head's
pattern decides, clustered and with both predictor kinds trained by the real jobs; then real pasted code
through the API gets a real probability with the accuracy of the predictor that gave it, and a population
experiment ranks heads by that predictor's SHAP over its own held-out scenarios (slow: UMAP)."""

from __future__ import annotations

import shutil
import sqlite3
from hashlib import sha256

import numpy as np
import pytest
from fastapi.testclient import TestClient

from attnlens.api import create_app
from attnlens.atlas.handlers import JOB_HANDLERS
from attnlens.atlas.indexing import sync_index
from attnlens.atlas.train_predictors import predictor_parameters
from attnlens.contracts.jobs import ABLATION_EXPERIMENT, ATLAS_CLUSTER, TRAIN_PREDICTORS
from attnlens.heads import HeadRef
from attnlens.service.jobs import JobRunner, run_job_here
from attnlens.service.local import LocalWorker
from attnlens.store import open_store, save_scenarios
from attnlens.store.jobs import enqueue_job
from attnlens.store.patterns import STAT_COLUMNS, save_head_patterns, save_inference
from tests.conftest import JAVA_FIXTURES
from tests.store.fake_atlas import FakeScenario

pytestmark = pytest.mark.slow

HEADS = tuple(HeadRef(layer, head) for layer in range(4) for head in range(4))  # the tiny StarCoder2's
SIGNAL = HeadRef(2, 1)
DIM = 32  # the tiny AP-MAE's embedding width
ANALYSIS = {
    "umap_neighbors": 10,
    "hdbscan_min_samples": 5,
    "hdbscan_min_cluster_size": 15,
    "predictor_iterations": 200,
    "cv_folds": 4,
    "bootstrap_resamples": 200,
}
CODE = """public class Counter {
    private int count;

    public void increment() {
        count += 1;
    }

    public boolean isEmpty() {
        return count == 0;
    }
}
"""


def write_signal_rows(store, model_name: str, embedder: str, n: int = 160, seed: int = 0) -> None:
    """`identifiers` rows whose every head has three well-separated pattern directions; a row is right
    with p 0.9 when SIGNAL is in its first direction and 0.1 otherwise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(HEADS), 3, DIM)).astype(np.float32)
    column = HEADS.index(SIGNAL)
    with store.session() as session:
        scenarios = [
            FakeScenario("signal", f"S{i}.java", sha256(f"s{i}".encode()).hexdigest(), "identifiers",
                         "identifier", 0, 1, "x", [5], [1, 2])
            for i in range(n)
        ]  # fmt: skip
        for scenario_id in save_scenarios(session, scenarios, model_name=model_name):
            members = rng.integers(0, 3, size=len(HEADS))
            correct = bool(rng.random() < (0.9 if members[column] == 0 else 0.1))
            inference_id = save_inference(
                session, model_name=model_name, scenario_id=scenario_id, first_token_correct=correct,
                embedder=embedder,
            )  # fmt: skip
            vectors = centres[np.arange(len(HEADS)), members] + rng.normal(0, 0.15, size=(len(HEADS), DIM))
            stats = {name: np.zeros(len(HEADS)) for name in STAT_COLUMNS}
            save_head_patterns(
                session, inference_id, HEADS, vectors, np.zeros((len(HEADS), 4, 4), np.uint8), stats
            )


@pytest.fixture(scope="module")
def predicted(tiny_atlas, tmp_path_factory):
    source_settings, _, _ = tiny_atlas
    data = tmp_path_factory.mktemp("predicted") / "data"
    data.mkdir()
    with (
        sqlite3.connect(source_settings.data_dir / "attnlens.db") as a,
        sqlite3.connect(data / "attnlens.db") as b,
    ):
        a.backup(b)
    shutil.copytree(source_settings.index_dir, data / "index")
    settings = source_settings.model_copy(
        update={"data_dir": data, "analysis": source_settings.analysis.model_copy(update=ANALYSIS)}
    )
    store = open_store(settings)
    write_signal_rows(store, settings.model.name, LocalWorker(settings).embedder_name)
    for kind, parameters in (
        (ATLAS_CLUSTER, {}),
        (TRAIN_PREDICTORS, predictor_parameters(["identifiers"], None)),
    ):
        job = run_job_here(settings, store, enqueue_job(store, kind, parameters), None, JOB_HANDLERS[kind])
        assert job.state == "succeeded", job.error
    sync_index(settings, store)
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        yield settings, store, worker, client


def test_pasted_code_gets_a_real_probability_with_its_predictors_accuracy(predicted):
    _, _, _, client = predicted
    trained = {p["kind"]: p for p in client.get("/api/predictors").json() if p["task"] == "identifiers"}
    assert set(trained) == {"clusters_catboost", "embeddings_pca_logreg"}
    response = client.post("/api/analyze", json={"code": CODE, "hole": {"cursor": 0, "task": "identifiers"}})
    assert response.status_code == 200, response.json()
    body = response.json()
    prediction = body["prediction"]
    assert prediction is not None, body["prediction_unavailable"]
    assert 0.0 < prediction["probability_correct"] < 1.0
    best = max(trained.values(), key=lambda p: (p["accuracy"], p["id"]))
    shown = prediction["predictor"]
    assert (shown["kind"], shown["accuracy"], shown["accuracy_low"], shown["accuracy_high"]) == (
        best["kind"], best["accuracy"], best["accuracy_low"], best["accuracy_high"],
    )  # fmt: skip
    assert (
        shown["chance"] == best["chance"] and best["accuracy_low"] > best["chance"]
    )  # it learned the signal
    tops = body["top_heads"]
    assert tops and all(isinstance(t["cluster"], int) for t in tops)
    grid = {cell["name"]: cell["cluster"] for cell in body["grid"]["heads"]}
    assert all(
        grid[t["name"]] == t["cluster"] for t in tops
    )  # the grid shows the clusters the top heads joined


def test_experiment_ranks_heads_by_the_predictor_over_its_own_scenarios(predicted):
    settings, store, worker, client = predicted
    body = {"task": "identifiers", "rules": ["top_positive", "random"], "n": [1, 2], "scenarios": 6,
            "corpus": str(JAVA_FIXTURES)}  # fmt: skip
    queued = client.post("/api/experiments", json=body)
    assert queued.status_code == 202, queued.json()
    assert JobRunner(
        settings, store, worker, {ABLATION_EXPERIMENT: JOB_HANDLERS[ABLATION_EXPERIMENT]}
    ).run_once()
    job = client.get(f"/api/jobs/{queued.json()['id']}").json()
    assert job["state"] == "succeeded", job["error"]
    result = job["result"]
    assert "held-out scenarios" in result["ranked_by"] and str(result["scenarios"]) in result["ranked_by"]
    assert result["ranking_kind"] in ("clusters_catboost", "embeddings_pca_logreg")
    ranked = [r["name"] for r in result["ranking"]]
    assert len(ranked) == len(HEADS)
    first = next(r for r in result["rows"] if r["rule"] == "top_positive" and r["n"] == 1)
    positive = {r["name"]: r["mean_positive_shap"] for r in result["ranking"]}
    assert len(first["heads"]) == 1 and positive[first["heads"][0]] == max(positive.values())
