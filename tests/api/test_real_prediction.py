"""Real predictions end to end: the tiny atlas plus rows of `identifiers` whose correctness one head's
pattern decides, clustered and with both predictor kinds trained by the real jobs; then real pasted code
through the API gets a real probability with the accuracy of the predictor that gave it, and a population
experiment ranks heads by that predictor's SHAP over its own held-out scenarios (slow: UMAP)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from attnlens.api import create_app
from attnlens.atlas.handlers import JOB_HANDLERS
from attnlens.contracts.jobs import ABLATION_EXPERIMENT
from attnlens.service.jobs import JobRunner
from attnlens.service.local import LocalWorker
from tests.conftest import JAVA_FIXTURES_CORPUS
from tests.store.signal_atlas import CODE, HEADS, build_predicted_atlas

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def predicted(tiny_atlas, tmp_path_factory):
    settings, store = build_predicted_atlas(tiny_atlas[0], tmp_path_factory.mktemp("predicted") / "data")
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


def test_a_short_paste_says_its_predictors_measured_accuracy_does_not_apply(predicted):
    """The predictors were measured on the atlas's windows; this paste's prompt has another length, so the
    prediction says the accuracy does not apply and why (the probability is still given)."""
    from attnlens.store.analyses import newest_predictors

    settings, store, _, client = predicted
    windows = {
        row.predictor.parameters["window_tokens"] for row in newest_predictors(store, settings.model.name)
    }
    response = client.post("/api/analyze", json={"code": CODE, "hole": {"cursor": 0, "task": "identifiers"}})
    assert response.status_code == 200, response.json()
    prediction = response.json()["prediction"]
    assert prediction is not None and 0.0 < prediction["probability_correct"] < 1.0
    (window,) = windows  # every predictor was trained on windows of one length
    prompt = prediction["prompt_tokens"]
    assert 0 < prompt != window
    assert prediction["applies"] is False
    assert prediction["applicability"].startswith(
        f"measured on {window}-token atlas windows; this paste's prompt is {prompt} tokens"
    )
    assert prediction["applicability"].endswith("so the measured accuracy does not apply to it")


def test_experiment_ranks_heads_by_the_predictor_over_its_own_scenarios(predicted):
    settings, store, worker, client = predicted
    body = {"task": "identifiers", "rules": ["top_positive", "random"], "n": [1, 2], "scenarios": 6,
            "corpus": JAVA_FIXTURES_CORPUS}  # fmt: skip
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
