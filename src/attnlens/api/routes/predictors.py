"""The correctness predictors trained for a model: the newest of each (task, kind) with its CV quality, and
one predictor with the evidence behind its accuracy."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from attnlens.api.deps import ModelQuery, SettingsDep, StoreDep
from attnlens.api.schemas import PredictorSummary
from attnlens.api.schemas_predictors import (
    HeadImportancePublic,
    PredictorBaselines,
    PredictorDetail,
    ReliabilityBinPublic,
    ShuffledControlPublic,
    TaskHeadsPublic,
)
from attnlens.errors import NotFound
from attnlens.heads import HeadRef
from attnlens.store.analyses import (
    PredictorRow,
    important_heads,
    newest_predictors,
    predictor_with_evaluation,
)

router = APIRouter(tags=["analysis"])


def predictor_summary(row: PredictorRow) -> dict[str, Any]:
    return {
        "id": row.predictor.id,
        "name": row.predictor.name,
        "kind": row.predictor.kind,
        "task": row.predictor.task,
        "accuracy": row.evaluation.accuracy,
        "accuracy_low": row.evaluation.accuracy_low,
        "accuracy_high": row.evaluation.accuracy_high,
        "chance": (row.evaluation.details or {}).get("chance"),
        "brier": row.evaluation.brier,
        "calibration_error": row.evaluation.calibration_error,
        "n_rows": row.evaluation.n_rows,
        "folds": row.evaluation.folds,
        "created_at": row.predictor.created_at,
    }


@router.get("/predictors", response_model=list[PredictorSummary])
def read_predictors(
    store: StoreDep,
    settings: SettingsDep,
    model: ModelQuery = None,
) -> list[PredictorSummary]:
    """Per task and predictor kind, the newest predictor with its cross-validated accuracy [95% CI], chance
    level, Brier score and calibration error. Empty until `attnlens predictors train` (or the demo chain)
    ran."""
    return [
        PredictorSummary(**predictor_summary(row))
        for row in newest_predictors(store, model or settings.model.name)
    ]


@router.get("/predictors/heads", response_model=list[TaskHeadsPublic])
def read_important_heads(
    store: StoreDep,
    settings: SettingsDep,
    model: ModelQuery = None,
    top: Annotated[int, Query(ge=1, le=50, description="Heads per task.")] = 5,
) -> list[TaskHeadsPublic]:
    """Per task, the `top` heads by mean |SHAP| in the task's most accurate predictor that ranks heads, with
    that predictor's accuracy [95% CI] and whether the interval lies above chance. Tasks whose predictors
    rank no heads are left out; empty before any predictor."""
    return [
        TaskHeadsPublic(
            task=ranking.task, predictor_id=ranking.row.predictor.id, kind=ranking.row.predictor.kind,
            accuracy=ranking.row.evaluation.accuracy, accuracy_low=ranking.row.evaluation.accuracy_low,
            accuracy_high=ranking.row.evaluation.accuracy_high, chance=ranking.chance,
            above_chance=ranking.above_chance,
            heads=[_importance(asdict(head)) for head in ranking.heads],
        )
        for ranking in important_heads(store, model or settings.model.name, top)
    ]  # fmt: skip


def _shuffled(control: dict[str, Any] | None) -> ShuffledControlPublic | None:
    if not control:
        return None
    accuracy = control.get("accuracy") or {}
    return ShuffledControlPublic(
        accuracy=accuracy["estimate"],
        accuracy_low=accuracy["low"],
        accuracy_high=accuracy["high"],
        brier=control.get("brier"),
        roc_auc=control.get("roc_auc"),
    )


def _importance(entry: dict[str, Any]) -> HeadImportancePublic:
    ref = HeadRef.parse(entry["name"])
    return HeadImportancePublic(
        name=ref.name,
        layer=ref.layer,
        head=ref.head,
        mean_abs_shap=entry["mean_abs_shap"],
        mean_shap=entry["mean_shap"],
    )


@router.get("/predictors/{predictor_id}", response_model=PredictorDetail)
def read_predictor(
    predictor_id: Annotated[int, Path(ge=1, le=2**62, description="A predictor id (GET /api/predictors).")],
    store: StoreDep,
) -> PredictorDetail:
    """One predictor with its cross-validated evaluation: n rows and folds, accuracy with its Wilson 95%
    interval, chance (majority-class rate), each fold's accuracy, Brier score, calibration error, ROC AUC,
    the reliability table, the shuffled-label control, the training parameters, and every head's SHAP
    importance in the final model (mean |SHAP| and signed mean)."""
    row = predictor_with_evaluation(store, predictor_id)
    if row is None:
        raise NotFound(f"no evaluated predictor with id {predictor_id}; list them with GET /api/predictors.")
    details = row.evaluation.details or {}
    chance = details.get("chance")
    return PredictorDetail(
        **predictor_summary(row),
        model_name=row.predictor.model_name,
        clustering_id=row.predictor.clustering_id,
        n_train=row.predictor.n_train,
        n_correct=details.get("n_correct"),
        above_chance=None if chance is None else row.evaluation.accuracy_low > chance,
        fold_accuracies=details.get("fold_accuracies") or [],
        roc_auc=details.get("roc_auc"),
        reliability=[ReliabilityBinPublic(**b) for b in details.get("reliability") or []],
        shuffled_control=_shuffled(details.get("shuffled_control")),
        rounds=details.get("rounds") or [],
        expected_value=details.get("expected_value"),
        parameters=row.predictor.parameters or {},
        head_importance=[_importance(e) for e in details.get("head_importance") or []],
        baselines=PredictorBaselines.model_validate(details["baselines"])
        if details.get("baselines")
        else None,
    )
