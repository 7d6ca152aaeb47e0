"""Analyze pasted Java: completion, correctness, predicted correctness, the head grid; and, without running
a model, which hole(s) that analysis would complete (the preview the paste page shows)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request

from attnlens.analysis.anomalies import TAIL
from attnlens.api.deps import SessionDep, SettingsDep, StoreDep, WorkerDep
from attnlens.api.errors import error_body
from attnlens.api.routes.heads import head_facts
from attnlens.api.routes.inferences import head_grid, pasted_head_grid
from attnlens.api.schemas import AnalyzedHole, AnalyzePublic, AnalyzeRequest
from attnlens.api.schemas_holes import HolesPreviewPublic, PreviewedHolePublic, PreviewError
from attnlens.contracts.results import HoleRequest, PastedHole
from attnlens.errors import AttnLensError, InvalidInput
from attnlens.heads import HeadRef

router = APIRouter(tags=["analyze"])


def _hole_request(body: AnalyzeRequest) -> HoleRequest | None:
    return HoleRequest(**body.hole.model_dump()) if body.hole is not None else None


def _hole(result: PastedHole) -> AnalyzedHole:
    return AnalyzedHole(**{name: getattr(result, name) for name in AnalyzedHole.model_fields})


@router.post("/analyze", response_model=AnalyzePublic)
def analyze(
    body: AnalyzeRequest,
    worker: WorkerDep,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    request: Request,
) -> AnalyzePublic:
    """Complete pasted Java at a hole, store it as a pasted inference (or, with `store: false`, write
    nothing), and predict whether the completion is right. Each head's cluster is where its pattern falls
    by kNN vote in the newest clustering. Pasted code never enters the atlas's analyses."""
    hole = _hole_request(body)
    results = worker.analyze(body.code, hole, body.tasks, store=body.store)
    first = results[0]
    errors = head_facts(request, store, settings.model.name).errors
    if first.inference_id is not None:
        grid = head_grid(session, first.inference_id, clusters=first.clusters, errors=errors)
    elif first.grid is not None:
        grid = pasted_head_grid(first.grid, first.clusters, errors)
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
        unusual_share=errors.unusual_share(
            {
                HeadRef(c.layer, c.head): c.reconstruction_error
                for c in grid.heads
                if c.reconstruction_error is not None
            }
        ),
        unusual_tail=TAIL,
        unusual_chance=errors.chance_share([HeadRef(c.layer, c.head) for c in grid.heads], in_atlas=False),
        others=[_hole(r) for r in results[1:]],
    )


@router.post("/analyze/holes", response_model=HolesPreviewPublic)
def preview_holes(
    body: AnalyzeRequest,
    worker: WorkerDep,
    inline_errors: Annotated[
        bool,
        Query(
            description="Answer 200 with the error in `error` (and no holes) when no hole can be made, "
            "instead of answering with the error itself: for a page that previews as the user types, "
            "where 'no hole here' is an everyday answer."
        ),
    ] = False,
) -> HolesPreviewPublic:
    """Which hole(s) POST /api/analyze would complete for the same body, without running any model: the
    same checks and the same hole choice (a selection, the next target of a task at or after a cursor, or
    the last target of each task), each widened to the served model's tokens as the run widens it once the
    model has loaded. When no hole can be made, the error the analysis would answer (400/413/422). Works
    while the model loads. `store` is ignored: a preview writes nothing."""
    try:
        preview = worker.preview_holes(body.code, _hole_request(body), body.tasks)
    except InvalidInput as exc:
        if not inline_errors:
            raise
        error = PreviewError(**error_body(exc.status, exc.code, exc.message, exc.details))
        return HolesPreviewPublic(holes=[], aligned=False, note=None, error=error)
    return HolesPreviewPublic(
        holes=[PreviewedHolePublic(**asdict(h)) for h in preview.holes],
        aligned=preview.aligned,
        note=preview.note,
    )
