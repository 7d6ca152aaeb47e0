"""Long tasks: list, one with its progress, cancel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from attnlens.api.deps import StoreDep
from attnlens.api.schemas import JobPublic
from attnlens.store.analyses import queued_job_ids
from attnlens.store.base import utc_now
from attnlens.store.jobs import get_job, list_jobs, request_cancel
from attnlens.store.models import Job

router = APIRouter(tags=["jobs"])

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JobId = Annotated[int, Path(ge=1, le=2**62, description="A job id.")]


def job_public(job: Job, queue: Sequence[int] = ()) -> JobPublic:
    """The job as the API shows it; with `queue` (queued ids, oldest first) a queued job knows its place."""
    eta = None
    if (
        job.state == "running"
        and job.started_at
        and job.progress_total
        and 0 < job.progress_done < job.progress_total
    ):
        elapsed = (utc_now() - job.started_at).total_seconds()
        eta = elapsed / job.progress_done * (job.progress_total - job.progress_done)
    return JobPublic(
        id=job.id,
        kind=job.kind,
        state=job.state,
        parameters=job.parameters or {},
        progress_done=job.progress_done,
        progress_total=job.progress_total,
        message=job.message,
        error=job.error,
        result=job.result,
        cancel_requested=job.cancel_requested,
        created_at=job.created_at,
        started_at=job.started_at,
        heartbeat_at=job.heartbeat_at,
        finished_at=job.finished_at,
        eta_seconds=eta,
        queue_place=queue.index(job.id) + 1 if job.state == "queued" and job.id in queue else None,
    )


@router.get("/jobs", response_model=list[JobPublic])
def read_jobs(
    store: StoreDep,
    state: Annotated[
        list[JobState] | None, Query(max_length=8, description="Only jobs in these states.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[JobPublic]:
    """Jobs, newest first."""
    queue = queued_job_ids(store)
    jobs = list_jobs(store, states=list(state) if state else None, limit=limit)
    return [job_public(job, queue) for job in jobs]


@router.get("/jobs/{job_id}", response_model=JobPublic)
def read_job(job_id: JobId, store: StoreDep) -> JobPublic:
    """One job with its progress and, when finished, its result or error."""
    return job_public(get_job(store, job_id), queued_job_ids(store))


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: JobId, store: StoreDep) -> JobPublic:
    """Ask a job to stop; a queued job stops at once, a running one at its next progress report."""
    return job_public(request_cancel(store, job_id))
