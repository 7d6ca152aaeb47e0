"""Where each analysis of a model stands, so that pages can say "not yet" calmly: whether its result
exists, and the job making it (queued with its place in the queue, or running with progress and ETA), or the
newest one that failed."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from pydantic import BaseModel, Field

from attnlens.api.deps import ModelQuery, SettingsDep, StoreDep
from attnlens.api.routes.jobs import job_public
from attnlens.api.schemas import JobPublic
from attnlens.contracts.jobs import ATLAS_BUILD, ATLAS_CLUSTER, ATLAS_MAP, TRAIN_PREDICTORS, job_model
from attnlens.store import Store
from attnlens.store.analyses import (
    has_mined_inferences,
    has_predictors,
    jobs_of_kind,
    latest_clustering,
    latest_map,
    queued_job_ids,
)
from attnlens.store.jobs import past_rates
from attnlens.store.models import Job

router = APIRouter(tags=["jobs"])

_PENDING = ("queued", "running")
# kind -> (what it makes, in words; whether that exists for a model; the command that makes one)
_ANALYSES: dict[str, tuple[str, Callable[[Store, str], bool], str]] = {
    ATLAS_BUILD: ("the atlas", has_mined_inferences, "attnlens atlas build"),
    ATLAS_CLUSTER: (
        "the clustering",
        lambda s, m: latest_clustering(s, m) is not None,
        "attnlens atlas cluster",
    ),
    ATLAS_MAP: ("the cluster map", lambda s, m: latest_map(s, m) is not None, "attnlens atlas map"),
    TRAIN_PREDICTORS: ("the correctness predictors", has_predictors, "attnlens predictors train"),
}


class AnalysisStatus(BaseModel):
    """One analysis of a model. `ready`: its result exists. `state`: of the newest pending job if any, else
    of the newest job (`none`: never made); `job` is that job (its `queue_place` says where it waits)."""

    kind: str
    what: str
    ready: bool
    state: str = Field(description="none, queued, running, succeeded, failed or cancelled.")
    job: JobPublic | None
    message: str


def _status(store: Store, kind: str, model: str, default_model: str, queue: list[int]) -> AnalysisStatus:
    what, exists, command = _ANALYSES[kind]
    ready = exists(store, model)
    jobs: list[Job] = [
        j for j in jobs_of_kind(store, kind, 20) if job_model(j.parameters, default_model) == model
    ]
    pending = next((j for j in jobs if j.state in _PENDING), None)
    job = pending or (jobs[0] if jobs else None)
    public = job_public(job, queue, past_rates(store)) if job else None
    newer = " (a newer one)" if ready else ""
    if public is not None and public.state == "queued":
        # The queue's words, as the job's own block says them (a running job is not in the queue).
        place = "next in the queue" if public.queue_place == 1 else f"place {public.queue_place} in the queue"
        message = f"Job #{public.id} making {what}{newer} is queued ({place}); this page shows it when done."
    elif public is not None and public.state == "running":
        progress = (
            f"{public.progress_done:,} of {public.progress_total:,}" if public.progress_total else "starting"
        )
        eta = f", about {round(public.eta_seconds / 60) or 1} min left" if public.eta_seconds else ""
        message = f"Job #{public.id} is making {what}{newer} ({progress}{eta}); this page shows it when done."
    elif ready:
        message = f"{what[0].upper()}{what[1:]} is ready."
    elif public is not None and public.state in ("failed", "cancelled"):
        reason = public.error or "no reason given"
        message = f"The newest job making {what} (#{public.id}) {public.state}: {reason}."
        message += f" Queue another from the Jobs page or with `{command}`."
    else:
        message = f"No {what.removeprefix('the ')} for {model} yet: make one with `{command}`."
    return AnalysisStatus(
        kind=kind, what=what, ready=ready, state=public.state if public else "none", job=public,
        message=message,
    )  # fmt: skip


@router.get("/analyses/status", response_model=list[AnalysisStatus])
def read_analyses_status(
    store: StoreDep, settings: SettingsDep, model: ModelQuery = None
) -> list[AnalysisStatus]:
    """For the served model (or `model`): the atlas build, clustering, map and predictors, each ready or
    not, with the job making it and its place in the queue."""
    name = model or settings.model.name
    queue = queued_job_ids(store)
    return [_status(store, kind, name, settings.model.name, queue) for kind in _ANALYSES]
