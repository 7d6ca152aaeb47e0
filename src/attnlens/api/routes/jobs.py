"""Long tasks: list, one with its progress, cancel; queue the atlas jobs (build, cluster, map, train
predictors) with the CLI's options and the same parameters the CLI stores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import PurePath
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query

from attnlens.api.deps import SettingsDep, StoreDep
from attnlens.api.schemas import JobPublic
from attnlens.api.schemas_jobs import (
    JOB_REQUESTS,
    AtlasBuildRequest,
    HeadScoresRequest,
    JobKindPublic,
    JobRequest,
    TrainPredictorsRequest,
    form_fields,
    kind_of,
)
from attnlens.config import Settings
from attnlens.contracts.job_parameters import (
    analysis_parameters,
    build_parameters,
    head_scores_parameters,
    predictor_parameters,
)
from attnlens.contracts.jobs import (
    ATLAS_BUILD,
    ATLAS_CORPUS,
    DEMO_CORPUS,
    HF_PREFIX,
    resolve_corpus,
    served_corpora,
)
from attnlens.contracts.tasks import TASKS
from attnlens.errors import InvalidInput
from attnlens.store import Store
from attnlens.store.analyses import queued_job_ids
from attnlens.store.base import utc_now
from attnlens.store.inferences import atlas_models
from attnlens.store.jobs import (
    PastRate,
    enqueue_job,
    get_job,
    list_jobs,
    pace_group,
    past_rates,
    request_cancel,
)
from attnlens.store.models import Job

router = APIRouter(tags=["jobs"])

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JobId = Annotated[int, Path(ge=1, le=2**62, description="A job id.")]


def latest_build_corpus(store: Store) -> str | None:
    """The corpus of the newest atlas build that ran or runs, or None before any. The CLI and `serve` queue
    builds of any location, HTTP requests only of one `resolve_corpus` accepts: either way the location is
    the operator's choice."""
    recent = list_jobs(store, states=["succeeded", "running"], limit=200)
    builds = [j for j in recent if j.kind == ATLAS_BUILD]
    return str(builds[0].parameters["corpus"]) if builds else None


def corpus_names(settings: Settings, store: Store) -> dict[str, str]:
    """Every corpus name the API takes -> its location (GET /api/corpora lists the accepted ones)."""
    return served_corpora(
        settings.mining.corpora, demo=settings.atlas.demo_corpus, latest_build=latest_build_corpus(store)
    )


def default_corpus(registered: dict[str, str]) -> str:
    """The corpus a request that names none uses: the latest build's, else the demo atlas's."""
    return ATLAS_CORPUS if ATLAS_CORPUS in registered else DEMO_CORPUS


def estimate(job: Job, rates: Mapping[tuple[str, str | None], PastRate]) -> tuple[float | None, str | None]:
    """Seconds left for a running job, and what the figure rests on. From the recent finished jobs of its
    kind and model when there are any (their seconds per unit x this job's units, minus the time it has
    run): a job's own pace misleads while its progress is uneven (a map's UMAP fit moved no counter for
    minutes, and its ETA said 11-18 minutes of a job that took 1.7). From its own pace when no such job
    finished yet, or once it has run longer than they predict."""
    if job.state != "running" or not job.started_at or not job.progress_total:
        return None, None
    elapsed = (utc_now() - job.started_at).total_seconds()
    past = rates.get((job.kind, pace_group(job.parameters)))
    if past is not None:
        left = past.seconds_per_unit * job.progress_total - elapsed
        if left > 0:
            jobs = "job" if past.jobs == 1 else f"{past.jobs} jobs"
            return left, f"the pace of the last {jobs} of this kind"
    if 0 < job.progress_done < job.progress_total:
        left = elapsed / job.progress_done * (job.progress_total - job.progress_done)
        return left, "this job's pace so far"
    return None, None


def shown_parameters(parameters: Mapping[str, object] | None) -> dict[str, object]:
    """A job's parameters as the API shows them: a corpus by its file or folder name, never the server path
    the worker reads it from (GET /api/corpora names corpora the same way)."""
    shown = dict(parameters or {})
    corpus = shown.get("corpus")
    if isinstance(corpus, str) and not corpus.startswith(HF_PREFIX) and "/" in corpus:
        shown["corpus"] = PurePath(corpus).name
    return shown


def job_public(
    job: Job, queue: Sequence[int] = (), rates: Mapping[tuple[str, str | None], PastRate] | None = None
) -> JobPublic:
    """The job as the API shows it; with `queue` (queued ids, oldest first) a queued job knows its place,
    with `rates` (`past_rates`) a running one's ETA rests on the recent jobs of its kind."""
    eta, basis = estimate(job, rates or {})
    return JobPublic(
        id=job.id,
        kind=job.kind,
        state=job.state,
        parameters=shown_parameters(job.parameters),
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
        eta_basis=basis,
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
    rates = past_rates(store)
    return [job_public(job, queue, rates) for job in jobs]


# Before /jobs/{job_id}: routes match in order, and "kinds" is no job id.
@router.get("/jobs/kinds", response_model=list[JobKindPublic])
def read_job_kinds(store: StoreDep, settings: SettingsDep) -> list[JobKindPublic]:
    """The job kinds POST /api/jobs queues, each with its fields: defaults (the server's settings resolved),
    limits, and where their choices come from (tasks: GET /api/tasks, corpora: GET /api/corpora; models
    are listed here: the served one and those with mined inferences in the atlas)."""
    with store.session() as session:
        models = list(dict.fromkeys([settings.model.name, *atlas_models(session)]))
    defaults = {
        "corpus": default_corpus(corpus_names(settings, store)),
        "seed": settings.mining.seed,
        "batch_size": settings.atlas.batch_size,
        "model": settings.model.name,
    }
    out = []
    for request in JOB_REQUESTS:
        # A build left without tasks mines every task; a training's default depends on the atlas (null).
        named = defaults | ({"tasks": list(TASKS)} if request is AtlasBuildRequest else {})
        out.append(
            JobKindPublic(
                kind=kind_of(request),
                title=request.title,
                description=" ".join((request.__doc__ or "").split()),
                command=request.command,
                fields=form_fields(request, named, {"models": models}),
            )
        )
    return out


def _analysed_model(requested: str | None, settings: Settings, store: Store) -> str:
    """The model an analysis job is about: the served one, or another with mined inferences in the atlas
    (the served one is taken even before its build ran: an analysis queued behind a build waits for it)."""
    if requested is None or requested == settings.model.name:
        return settings.model.name
    with store.session() as session:
        models = atlas_models(session)
    if requested not in models:
        held = ", ".join(models) or "none"
        raise InvalidInput(
            f"the atlas holds no inferences of model {requested!r}; its models: {held}. Leave model out for "
            f"the served one ({settings.model.name})."
        )
    return requested


def request_parameters(body: JobRequest, settings: Settings, store: Store) -> dict[str, object]:
    """The job parameters of a request, built by the functions the CLI calls with the CLI's defaults, so
    that the same request queues the same job from either."""
    if isinstance(body, AtlasBuildRequest):
        registered = corpus_names(settings, store)
        by_name = partial(
            resolve_corpus,
            registered=registered,
            root=settings.mining.corpus_root,
            allow_hf=settings.mining.allow_hf_datasets,
        )
        return build_parameters(
            body.corpus or default_corpus(registered),
            body.tasks,
            body.per_task,
            settings.mining.seed if body.seed is None else body.seed,
            body.batch_size or settings.atlas.batch_size,
            corpus_check=by_name,
        )
    if isinstance(body, HeadScoresRequest):
        return head_scores_parameters(settings.model.name, body.limit)
    model = _analysed_model(body.model, settings, store)
    if isinstance(body, TrainPredictorsRequest):
        return predictor_parameters(body.tasks, model)
    return analysis_parameters(model, settings.model.name)


@router.post("/jobs", response_model=JobPublic, status_code=202)
def create_job(
    body: Annotated[JobRequest, Body(description="The job, told apart by `kind`.")],
    store: StoreDep,
    settings: SettingsDep,
) -> JobPublic:
    """Queue an atlas build, a clustering, a map or a predictor training (GET /api/jobs/kinds lists their
    fields); follow it with GET /api/jobs/{id}. The worker runs jobs one at a time in the order queued;
    builds use the served model and AP-MAE checkpoint. A corpus is a name from GET /api/corpora (anything
    else: 400 corpus_error), tasks come from GET /api/tasks (an unknown one: 400 invalid_input), a model
    other than the served one must have mined inferences in the atlas (400).

    An identical job already queued or running is not refused: the second is queued too and runs after
    it (a second build of the same corpus, tasks and seed finds its scenarios stored and does little; a
    second clustering or map is made anew). Neither the store nor the CLI refuses duplicates: the CLI only
    takes over an identical job still queued (to resume its own killed run), so `attnlens atlas cluster`
    run while such a job waits runs that job in the foreground."""
    kind = kind_of(type(body))
    parameters = request_parameters(body, settings, store)
    job_id = enqueue_job(store, kind, parameters)
    return job_public(get_job(store, job_id), queued_job_ids(store))


@router.get("/jobs/{job_id}", response_model=JobPublic)
def read_job(job_id: JobId, store: StoreDep) -> JobPublic:
    """One job with its progress and, when finished, its result or error."""
    return job_public(get_job(store, job_id), queued_job_ids(store), past_rates(store))


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: JobId, store: StoreDep) -> JobPublic:
    """Ask a job to stop; a queued job stops at once, a running one at its next progress report."""
    return job_public(request_cancel(store, job_id))
