"""A predictor kind is one module plus one registration: a toy kind registered here is trained by the
real `train_predictors` job on the synthetic atlas, stored, used for predictions, and listed by the API
and the CLI, with no other change anywhere (slow: shares the clustered synthetic atlas)."""

from __future__ import annotations

import subprocess
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from attnlens.analysis.predictor_kinds import (
    PredictorKindImpl,
    predictor_kinds,
    register_predictor_kind,
    unregister_predictor_kind,
)
from attnlens.api import create_app
from attnlens.atlas.train_predictors import predictor_parameters
from attnlens.contracts.jobs import TRAIN_PREDICTORS
from attnlens.contracts.predictors import PredictorKindSpec
from attnlens.heads import HeadRef
from attnlens.service.local import LocalWorker
from attnlens.store.models import Predictor, PredictorEvaluation
from tests.atlas.test_analysis_jobs import (
    ATTNLENS,
    HEADS,
    MODEL,
    SIGNAL,
    _predict,
    analysed,
    cli_env,
    run_kind,
)

__all__ = ["analysed"]  # the module fixture, shared with the analysis-job tests
pytestmark = pytest.mark.slow
TOY = "toy_cluster_bayes"


@dataclass
class ToyPredictor:
    """Naive Bayes over cluster ids: each head adds log-odds(correct | its cluster) - prior log-odds."""

    heads: tuple[HeadRef, ...]
    prior: float
    table: dict[int, dict[int, float]]  # head column -> cluster label -> log-odds shift
    kind: str = TOY

    def contributions(self, cluster_ids: np.ndarray) -> np.ndarray:
        return np.array([[self.table[j].get(int(c), 0.0) for j, c in enumerate(row)] for row in cluster_ids])

    def predict_proba(self, cluster_ids: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.prior + self.contributions(cluster_ids).sum(axis=1))))


def _fit(x: np.ndarray, y: np.ndarray, heads: tuple[HeadRef, ...]) -> ToyPredictor:
    y = np.asarray(y, dtype=float)
    logit = lambda p: float(np.log(p / (1 - p)))  # noqa: E731
    prior = logit((y.sum() + 1) / (len(y) + 2))
    table = {
        j: {
            int(c): logit((y[x[:, j] == c].sum() + 1) / ((x[:, j] == c).sum() + 2)) - prior
            for c in np.unique(x[:, j])
        }
        for j in range(len(heads))
    }
    return ToyPredictor(heads, prior, table)


def _save(p: ToyPredictor, _archive: zipfile.ZipFile) -> dict:
    return {
        "prior": p.prior,
        "table": {str(j): {str(c): v for c, v in t.items()} for j, t in p.table.items()},
    }


def _load(meta: dict, _archive: zipfile.ZipFile, heads: tuple[HeadRef, ...]) -> ToyPredictor:
    table = {int(j): {int(c): float(v) for c, v in t.items()} for j, t in meta["table"].items()}
    return ToyPredictor(heads, float(meta["prior"]), table)


TOY_KIND = PredictorKindImpl(
    spec=PredictorKindSpec(TOY, "cluster_ids", "test toy: naive Bayes over cluster ids"),
    fit_fold=lambda x, y, heads, _settings, _seed: (_fit(x, y, heads), None),
    fit_final=lambda x, y, heads, _settings, _rounds: _fit(x, y, heads),
    shap=lambda p, x: (p.contributions(x), p.prior),
    save=_save,
    load=_load,
)


@pytest.fixture
def toy_kind():
    register_predictor_kind(TOY_KIND)
    yield TOY_KIND
    unregister_predictor_kind(TOY)


def test_a_registered_kind_is_trained_stored_used_and_listed(analysed, toy_kind):
    atlas, _ = analysed
    assert predictor_kinds()[-1] == TOY
    job = run_kind(atlas, TRAIN_PREDICTORS, predictor_parameters(["identifiers"], MODEL))
    assert job.state == "succeeded", job.error
    trained = {row["kind"]: row for row in job.result["trained"]}
    assert set(trained) == set(predictor_kinds())
    # The toy reads the signal head's cluster, so it must beat chance as the built-ins do.
    assert trained[TOY]["accuracy_ci"][0] > trained[TOY]["chance"]
    with atlas.store.session() as session:
        stored = session.execute(
            select(Predictor, PredictorEvaluation)
            .join(PredictorEvaluation, PredictorEvaluation.predictor_id == Predictor.id)
            .where(Predictor.kind == TOY)
        ).one()
    predictor, evaluation = stored
    assert predictor.task == "identifiers" and evaluation.details["head_importance"][0]["name"] == SIGNAL.name

    with TestClient(create_app(atlas.settings, LocalWorker(atlas.settings), atlas.store)) as client:
        listed = client.get("/api/predictors").json()
        assert any(p["kind"] == TOY and p["id"] == predictor.id for p in listed)
        kinds = client.get("/api/predictors/kinds").json()
        assert [k["name"] for k in kinds] == list(predictor_kinds())
        assert kinds[-1] == {
            "name": TOY,
            "features": "cluster_ids",
            "description": "test toy: naive Bayes over cluster ids",
        }

    report = subprocess.run(
        [str(ATTNLENS), "predictors", "report"],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(atlas),
    )
    assert report.returncode == 0, report.stderr
    assert any(line.split()[:2] == ["identifiers", TOY] for line in report.stdout.splitlines())

    # A new inference is predicted by whichever kind measured best; the toy's blob loads back and predicts.
    from attnlens.analysis import predictor_from_bytes

    loaded = predictor_from_bytes(predictor.blob)
    assert (
        isinstance(loaded, ToyPredictor)
        and loaded.heads == HEADS
        and set(loaded.table) == set(range(len(HEADS)))
    )
    vectors = {ref.name: atlas.centres[i, 0] for i, ref in enumerate(HEADS)}
    prediction, reason, _ = _predict(atlas.settings, atlas.store, vectors, "identifiers")
    assert reason is None and prediction.predictor.kind in predictor_kinds()
