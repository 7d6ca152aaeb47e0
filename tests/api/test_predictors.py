"""GET /api/predictors: the newest predictor of each (task, kind) for the served model.

Each comes with its CV quality."""

from __future__ import annotations

from attnlens.store.models import Predictor, PredictorEvaluation
from tests.api.test_maps_clusters import client_for, copy_tiny_atlas


def add_predictor(store, model_name: str, task: str, kind: str, accuracy: float) -> int:
    with store.session() as session:
        predictor = Predictor(
            name=f"{model_name}/{task}/{kind}", kind=kind, model_name=model_name, task=task,
            parameters={}, n_train=40, blob=b"not read by this endpoint",
        )  # fmt: skip
        session.add(predictor)
        session.flush()
        session.add(
            PredictorEvaluation(
                predictor_id=predictor.id, n_rows=40, folds=5, accuracy=accuracy, accuracy_low=accuracy - 0.1,
                accuracy_high=accuracy + 0.1, brier=0.2, calibration_error=0.05, details={"chance": 0.6},
            )
        )  # fmt: skip
        return predictor.id


def test_lists_the_newest_predictor_per_task_and_kind(tiny_atlas, tmp_path):
    settings = copy_tiny_atlas(tiny_atlas, tmp_path / "data")
    client, store = client_for(settings)
    with client:
        assert client.get("/api/predictors").json() == []
        model = settings.model.name
        add_predictor(store, model, "eol", "clusters_catboost", 0.61)
        newer = add_predictor(store, model, "eol", "clusters_catboost", 0.72)
        logreg = add_predictor(store, model, "eol", "embeddings_pca_logreg", 0.65)
        other_task = add_predictor(store, model, "boolean_literals", "clusters_catboost", 0.9)
        add_predictor(store, "some-other-model", "eol", "clusters_catboost", 0.99)

        body = client.get("/api/predictors").json()
        assert [p["id"] for p in body] == [other_task, newer, logreg]  # sorted by task, then kind
        first = body[1]
        assert first["accuracy"] == 0.72 and first["chance"] == 0.6 and first["folds"] == 5
        assert first["task"] == "eol" and first["kind"] == "clusters_catboost"
        other = client.get("/api/predictors", params={"model": "some-other-model"}).json()
        assert [p["accuracy"] for p in other] == [0.99]
        assert client.get("/api/predictors", params={"model": "x" * 300}).status_code == 422
