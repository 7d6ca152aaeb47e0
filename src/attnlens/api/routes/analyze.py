"""Analyze pasted Java: completion, correctness, predicted correctness, the head grid."""

from __future__ import annotations

from fastapi import APIRouter

from attnlens.api.deps import SessionDep, WorkerDep
from attnlens.api.routes.inferences import head_grid, pasted_head_grid
from attnlens.api.schemas import AnalyzedHole, AnalyzePublic, AnalyzeRequest
from attnlens.contracts.results import HoleRequest, PastedHole
from attnlens.errors import AttnLensError

router = APIRouter(tags=["analyze"])


def _hole(result: PastedHole) -> AnalyzedHole:
    return AnalyzedHole(**{name: getattr(result, name) for name in AnalyzedHole.model_fields})


@router.post("/analyze", response_model=AnalyzePublic)
def analyze(body: AnalyzeRequest, worker: WorkerDep, session: SessionDep) -> AnalyzePublic:
    """Complete pasted Java at a hole, store it as a pasted inference (or, with `store: false`, write
    nothing), and predict whether the completion is right. Each head's cluster is where its pattern falls
    by kNN vote in the newest clustering. Pasted code never enters the atlas's analyses."""
    hole = HoleRequest(**body.hole.model_dump()) if body.hole is not None else None
    results = worker.analyze(body.code, hole, body.tasks, store=body.store)
    first = results[0]
    if first.inference_id is not None:
        grid = head_grid(session, first.inference_id, clusters=first.clusters)
    elif first.grid is not None:
        grid = pasted_head_grid(first.grid, first.clusters)
    else:
        raise AttnLensError("the worker returned an unstored paste without its grid.")
    return AnalyzePublic(
        **_hole(first).model_dump(),
        prediction=first.prediction,
        prediction_unavailable=first.prediction_unavailable,
        predicted_with_task=first.predicted_with_task,
        clustering_id=first.clustering_id,
        top_heads=list(first.prediction.top_heads) if first.prediction else [],
        grid=grid,
        others=[_hole(r) for r in results[1:]],
    )
