"""Ablation sweeps of one inference: ablate each head alone (and each layer) as a job, and read the newest."""

from __future__ import annotations

from fastapi import APIRouter

from attnlens.api.deps import InferenceDep, StoreDep, WorkerDep
from attnlens.api.routes.jobs import job_public
from attnlens.api.schemas import JobPublic
from attnlens.api.schemas_sweeps import SweepPublic, SweepRowPublic
from attnlens.contracts.jobs import HEAD_SWEEP, sweep_parameters
from attnlens.errors import InvalidInput, ModelUnavailable
from attnlens.store.analyses import jobs_about_inference, queued_job_ids
from attnlens.store.jobs import enqueue_job, get_job

router = APIRouter(tags=["ablations"])

UNFINISHED = ("queued", "running")


@router.post("/inferences/{inference_id}/sweeps", response_model=JobPublic, status_code=202)
def create_sweep(inference: InferenceDep, store: StoreDep, worker: WorkerDep) -> JobPublic:
    """Queue a sweep: ablate every head alone, then every whole layer, and measure p(expected), the KL
    divergence and whether the greedy first token flips (one forward pass each). A sweep of this inference
    already queued or running is answered instead of queueing a second. Follow it with GET /api/jobs/{id}
    or GET /api/inferences/{id}/sweeps/latest."""
    try:
        served = str(worker.status().get("model_name") or "")
    except ModelUnavailable:
        served = ""
    if served and inference.model_name != served:
        raise InvalidInput(
            f"inference {inference.id} was made with {inference.model_name!r}; the worker serves {served!r}. "
            "Serve that model to sweep it."
        )
    for job in jobs_about_inference(store, HEAD_SWEEP, inference.id, limit=5):
        if job.state in UNFINISHED:
            return job_public(job, queued_job_ids(store))
    job_id = enqueue_job(store, HEAD_SWEEP, sweep_parameters(inference.id, inference.model_name))
    return job_public(get_job(store, job_id), queued_job_ids(store))


@router.get("/inferences/{inference_id}/sweeps/latest", response_model=SweepPublic)
def read_latest_sweep(inference: InferenceDep, store: StoreDep) -> SweepPublic:
    """The newest sweep of this inference in any state, its rows once it succeeded; before any sweep, `job`
    is null (a state of the inference, not an error: POST /api/inferences/{id}/sweeps runs one)."""
    jobs = jobs_about_inference(store, HEAD_SWEEP, inference.id, limit=1)
    if not jobs:
        return SweepPublic(inference_id=inference.id, job=None)
    job = jobs[0]
    public = job_public(job, queued_job_ids(store))
    result = job.result if job.state == "succeeded" and job.result else None
    if result is None:
        return SweepPublic(inference_id=inference.id, job=public)
    return SweepPublic(
        inference_id=inference.id,
        job=public,
        expected_token=result.get("expected_token"),
        baseline_p_expected=result.get("baseline_p_expected"),
        baseline_top_token=result.get("baseline_top_token"),
        flipped=result.get("flipped"),
        rows=[SweepRowPublic.model_validate(row) for row in result["rows"]],
    )
