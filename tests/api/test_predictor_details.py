"""GET /api/predictors/{id}: one predictor with the evidence behind its accuracy, as the training job stores
it. Both predictor kinds are cross-validated and fitted by the job's own `evaluate_and_store` on rows whose
correctness one head decides (no clustering or UMAP needed: the rows are given), on a private copy of the
tiny atlas; the endpoint must serve exactly what was stored."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from attnlens.atlas.train_predictors import evaluate_and_store
from attnlens.heads import HeadRef
from attnlens.store.analysis_rows import TaskRows
from attnlens.store.models import PredictorEvaluation
from tests.api.test_maps_clusters import client_for, copy_tiny_atlas
from tests.api.test_predictors import add_predictor

HEADS = tuple(HeadRef(layer, head) for layer in range(4) for head in range(4))
SIGNAL = HeadRef(2, 1)
DIM = 8


def signal_rows(n: int = 120, seed: int = 0) -> TaskRows:
    """Rows whose every head falls in one of two clusters (well-separated embeddings); a row is right
    with p 0.9 when SIGNAL is in cluster 0 and 0.1 otherwise. The model's confidence at the hole is drawn
    independently of correctness; every fourth hole was widened."""
    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, 2, size=(n, len(HEADS)))
    correct = rng.random(n) < np.where(clusters[:, HEADS.index(SIGNAL)] == 0, 0.9, 0.1)
    centres = rng.normal(size=(len(HEADS), 2, DIM))
    embeddings = centres[np.arange(len(HEADS)), clusters] + rng.normal(0, 0.15, size=(n, len(HEADS), DIM))
    return TaskRows(
        task="identifiers", inference_ids=np.arange(1, n + 1), heads=HEADS, cluster_ids=clusters,
        embeddings=embeddings.astype(np.float32), correct=correct, dropped=0,
        confidence=np.column_stack([rng.uniform(0.2, 1, n), rng.uniform(0, 0.2, n), rng.uniform(0, 3, n)]),
        exact_hole=np.arange(n) % 4 != 0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tiny_atlas, tmp_path_factory):
    settings = copy_tiny_atlas(tiny_atlas, tmp_path_factory.mktemp("predictor-details") / "data")
    settings = settings.model_copy(
        update={
            "analysis": settings.analysis.model_copy(
                update={"cv_folds": 4, "predictor_iterations": 100, "bootstrap_resamples": 100}
            )
        }
    )
    client, store = client_for(settings)
    rows = signal_rows()
    ctx = SimpleNamespace(settings=settings, store=store, job=SimpleNamespace(id=None))
    summaries = {
        kind: evaluate_and_store(ctx, rows, kind, None, settings.model.name)
        for kind in ("clusters_catboost", "embeddings_pca_logreg")
    }
    with client:
        yield client, store, rows, summaries


def stored_details(store, predictor_id: int) -> dict:
    with store.session() as session:
        evaluation = session.query(PredictorEvaluation).filter_by(predictor_id=predictor_id).one()
        return dict(evaluation.details)


@pytest.mark.parametrize("kind", ["clusters_catboost", "embeddings_pca_logreg"])
def test_serves_the_stored_evaluation_of_a_trained_predictor(trained, kind):
    client, store, rows, summaries = trained
    summary = summaries[kind]
    predictor_id = summary["predictor_id"]
    response = client.get(f"/api/predictors/{predictor_id}")
    assert response.status_code == 200, response.json()
    body = response.json()
    listed = {p["id"]: p for p in client.get("/api/predictors").json()}[predictor_id]
    assert {k: body[k] for k in listed} == listed  # the detail extends the list's summary
    details = stored_details(store, predictor_id)

    assert (body["kind"], body["task"], body["n_rows"], body["folds"]) == (
        kind,
        "identifiers",
        len(rows.correct),
        4,
    )
    assert body["n_train"] == len(rows.correct) and body["n_correct"] == int(rows.correct.sum())
    majority = max(rows.correct.mean(), 1 - rows.correct.mean())
    assert body["chance"] == pytest.approx(majority) and round(body["chance"], 4) == summary["chance"]
    assert body["accuracy_low"] <= body["accuracy"] <= body["accuracy_high"]
    assert round(body["accuracy"], 4) == summary["accuracy"]
    assert body["above_chance"] is True and body["accuracy_low"] > body["chance"]  # one head decides
    assert body["fold_accuracies"] == details["fold_accuracies"] and len(body["fold_accuracies"]) == 4
    assert body["roc_auc"] == details["roc_auc"] and body["roc_auc"] > 0.7
    assert body["rounds"] == details["rounds"] and (len(body["rounds"]) == 4) == (kind == "clusters_catboost")

    bins = body["reliability"]
    assert bins == details["reliability"] and sum(b["count"] for b in bins) == len(rows.correct)
    assert all((b["count"] == 0) == (b["observed_rate"] is None) for b in bins)
    assert [b["low"] for b in bins] == sorted(b["low"] for b in bins)

    control = body["shuffled_control"]
    stored = details["shuffled_control"]["accuracy"]
    assert (control["accuracy"], control["accuracy_low"], control["accuracy_high"]) == (
        stored["estimate"], stored["low"], stored["high"],
    )  # fmt: skip
    assert control["accuracy_low"] <= body["chance"] + 0.05  # labels shuffled: no better than chance
    assert body["parameters"]["label"] == "first_token_correct" and body["parameters"]["cv_folds"] == 4

    heads = body["head_importance"]
    assert [h["name"] for h in heads] == [e["name"] for e in details["head_importance"]]
    assert sorted(h["name"] for h in heads) == sorted(ref.name for ref in HEADS)
    assert all(h["name"] == f"L{h['layer']}H{h['head']}" for h in heads)
    assert [h["mean_abs_shap"] for h in heads] == sorted((h["mean_abs_shap"] for h in heads), reverse=True)
    assert heads[0]["name"] == SIGNAL.name  # the head that decides correctness ranks first by |SHAP|
    # Signed means over the training rows sit near 0, the signal head's too: why |SHAP| ranks.
    assert abs(heads[0]["mean_shap"]) < 0.25 * heads[0]["mean_abs_shap"]


def test_an_older_evaluation_without_details_still_answers(trained):
    client, store, _, _ = trained
    predictor_id = add_predictor(store, "some-model", "eol", "clusters_catboost", 0.7)  # details: chance only
    body = client.get(f"/api/predictors/{predictor_id}").json()
    assert body["chance"] == 0.6 and body["above_chance"] is False and body["model_name"] == "some-model"
    assert body["fold_accuracies"] == [] and body["reliability"] == [] and body["head_importance"] == []
    assert body["shuffled_control"] is None and body["roc_auc"] is None and body["n_correct"] is None


def test_unknown_predictor_is_a_404_in_the_error_shape(trained):
    client = trained[0]
    response = client.get("/api/predictors/987654")
    assert response.status_code == 404
    body = response.json()
    assert (body["ok"], body["status"], body["code"], body["errors"]) == (False, 404, "not_found", [])
    assert "987654" in body["error"] and "GET /api/predictors" in body["error"]
    assert client.get("/api/predictors/0").json()["code"] == "invalid_request"
    assert client.get("/api/predictors/abc").json()["code"] == "invalid_request"
    assert client.get(f"/api/predictors/{2**63}").json()["code"] == "invalid_request"  # no SQLite overflow
    assert client.get("/api/predictors/kinds").status_code == 200  # still the registry, not an id
