"""Analyze pasted Java: completion, correctness, predicted correctness, the head grid."""

from __future__ import annotations

from fastapi import APIRouter

from attnlens.api.deps import SessionDep, WorkerDep
from attnlens.api.routes.inferences import head_grid
from attnlens.api.schemas import AnalyzedHole, AnalyzePublic, AnalyzeRequest

router = APIRouter(tags=["analyze"])

NO_PREDICTOR = "no correctness predictor is trained for this atlas yet (run `attnlens predictors train`)."


@router.post("/analyze", response_model=AnalyzePublic)
def analyze(body: AnalyzeRequest, worker: WorkerDep, session: SessionDep) -> AnalyzePublic:
    """Complete pasted Java at a hole, store it as an inference, and predict whether the completion is right."""
    hole = body.hole.model_dump(exclude_none=True) if body.hole is not None else None
    results = worker.analyze(body.code, hole or None, body.tasks)
    holes = [AnalyzedHole(**{k: v for k, v in r.items() if k in AnalyzedHole.model_fields}) for r in results]
    first = holes[0]
    return AnalyzePublic(
        **first.model_dump(),
        prediction=None,
        prediction_unavailable=NO_PREDICTOR,
        top_heads=[],
        grid=head_grid(session, first.inference_id),
        others=holes[1:],
    )
