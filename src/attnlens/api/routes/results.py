"""Deleting a finished job's result (its map, clustering or predictors, or the experiment, report or sweep
it holds), never a row another stored result still uses without saying so (409 in_use)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path

from attnlens.api.deps import StoreDep
from attnlens.api.schemas_results import DeletedResultPublic
from attnlens.store.deletion import delete_job_result

router = APIRouter(tags=["jobs"])


@router.delete("/jobs/{job_id}/result", response_model=DeletedResultPublic)
def delete_result(
    job_id: Annotated[int, Path(ge=1, le=2**62, description="A finished job's id.")], store: StoreDep
) -> DeletedResultPublic:
    """Delete what a finished job produced: an atlas map's points, a clustering, trained predictors, or the
    job itself when its result lives in it (an experiment, a findings report, a sweep). Refused (409
    in_use) when another result still uses it (predictors trained on the clustering, experiments that
    ranked heads by the predictors), naming them; refused (400) for a job still running and for an atlas
    build. Findings reports keep their own copy of an experiment they cite: they are listed, not touched."""
    return DeletedResultPublic(**asdict(delete_job_result(store, job_id)))
