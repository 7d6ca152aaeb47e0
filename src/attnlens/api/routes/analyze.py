"""Analyze pasted Java: completion, correctness, predicted correctness, the head grid."""

from __future__ import annotations

from fastapi import APIRouter

from attnlens.api.deps import SessionDep, WorkerDep
from attnlens.api.routes.inferences import head_grid
from attnlens.api.schemas import AnalyzedHole, AnalyzePublic, AnalyzeRequest, HeadImportance, Prediction

router = APIRouter(tags=["analyze"])


@router.post("/analyze", response_model=AnalyzePublic)
def analyze(body: AnalyzeRequest, worker: WorkerDep, session: SessionDep) -> AnalyzePublic:
    """Complete pasted Java at a hole, store it as an inference, and predict whether the completion is right."""
    hole = body.hole.model_dump(exclude_none=True) if body.hole is not None else None
    results = worker.analyze(body.code, hole or None, body.tasks)
    holes = [AnalyzedHole(**{k: v for k, v in r.items() if k in AnalyzedHole.model_fields}) for r in results]
    first, result = holes[0], results[0]
    prediction = result["prediction"]
    return AnalyzePublic(
        **first.model_dump(),
        prediction=Prediction(**{k: prediction[k] for k in ("probability_correct", "predictor")})
        if prediction
        else None,
        prediction_unavailable=result["prediction_unavailable"],
        predicted_with_task=result["predicted_with_task"],
        top_heads=[
            HeadImportance(**h, cluster=prediction["clusters"].get(h["name"])) for h in prediction["top_heads"]
        ]
        if prediction
        else [],
        grid=head_grid(session, first.inference_id, clusters=prediction["clusters"] if prediction else {}),
        others=holes[1:],
    )
