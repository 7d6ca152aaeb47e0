"""The correctness predictors trained for a model: the newest of each (task, kind) with its CV quality."""

from __future__ import annotations

from fastapi import APIRouter

from attnlens.api.deps import ModelQuery, SettingsDep, StoreDep
from attnlens.api.schemas import PredictorSummary
from attnlens.store.analyses import newest_predictors

router = APIRouter(tags=["analysis"])


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
        PredictorSummary(
            id=row.predictor.id,
            name=row.predictor.name,
            kind=row.predictor.kind,
            task=row.predictor.task,
            accuracy=row.evaluation.accuracy,
            accuracy_low=row.evaluation.accuracy_low,
            accuracy_high=row.evaluation.accuracy_high,
            chance=(row.evaluation.details or {}).get("chance"),
            brier=row.evaluation.brier,
            calibration_error=row.evaluation.calibration_error,
            n_rows=row.evaluation.n_rows,
            folds=row.evaluation.folds,
            created_at=row.predictor.created_at,
        )
        for row in newest_predictors(store, model or settings.model.name)
    ]
