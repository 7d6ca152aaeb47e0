"""The correctness predictors trained for a model: the newest of each (task, kind) with its CV quality."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from attnlens.api.deps import ModelQuery, SessionDep, SettingsDep
from attnlens.api.schemas import PredictorSummary
from attnlens.store.models import Predictor, PredictorEvaluation

router = APIRouter(tags=["analysis"])


@router.get("/predictors", response_model=list[PredictorSummary])
def read_predictors(
    session: SessionDep,
    settings: SettingsDep,
    model: ModelQuery = None,
) -> list[PredictorSummary]:
    """Per task and predictor kind, the newest predictor with its cross-validated accuracy [95% CI], chance
    level, Brier score and calibration error. Empty until `attnlens predictors train` (or the demo chain) ran."""
    rows = session.execute(
        select(Predictor, PredictorEvaluation)
        .join(PredictorEvaluation, PredictorEvaluation.predictor_id == Predictor.id)
        .where(Predictor.model_name == (model or settings.model.name))
        .order_by(Predictor.id.desc(), PredictorEvaluation.id.desc())
    ).all()
    newest: dict[tuple[str | None, str], PredictorSummary] = {}
    for predictor, evaluation in rows:
        newest.setdefault(
            (predictor.task, predictor.kind),
            PredictorSummary(
                id=predictor.id,
                name=predictor.name,
                kind=predictor.kind,
                task=predictor.task,
                accuracy=evaluation.accuracy,
                accuracy_low=evaluation.accuracy_low,
                accuracy_high=evaluation.accuracy_high,
                chance=(evaluation.details or {}).get("chance"),
                brier=evaluation.brier,
                calibration_error=evaluation.calibration_error,
                n_rows=evaluation.n_rows,
                folds=evaluation.folds,
                created_at=predictor.created_at,
            ),
        )
    return sorted(newest.values(), key=lambda p: (p.task or "", p.kind))
