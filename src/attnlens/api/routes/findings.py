"""The findings report (`contracts.findings`): the newest report of a model with the paper's statements,
whether a new one is being made, queuing one, and the report as Markdown or HTML downloads.

"Not yet" is a state, not an error: GET /api/findings answers 200 with `findings: null` and a status that
says what is queued or how to make a report. Only a download of a report that does not exist is a 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from attnlens.api.deps import ModelQuery, SessionDep, SettingsDep, StoreDep
from attnlens.api.routes.jobs import job_public
from attnlens.api.schemas import JobPublic
from attnlens.atlas.findings_render import to_html, to_markdown
from attnlens.contracts.findings import FINDINGS_REPORT, PAPER_CLAIMS, Findings, findings_from_result
from attnlens.contracts.jobs import ABLATION_EXPERIMENT, job_model
from attnlens.errors import InvalidInput, NotFound
from attnlens.store import Store
from attnlens.store.analyses import jobs_of_kind
from attnlens.store.inferences import atlas_models
from attnlens.store.jobs import enqueue_job, get_job
from attnlens.store.models import Job

router = APIRouter(tags=["findings"])

# The same validation as `cli.report.findings_from` (the API may not import the CLI); one adapter, built once.
# Report jobs looked at per request: far more than anyone queues, few enough to read in one query.
_RECENT_REPORTS = 50
_PENDING = ("queued", "running")
HOW_TO_MAKE = (
    "press “Generate a new report” (the Findings page, #/findings), or run `attnlens report` (it writes "
    "Markdown and HTML files too)."
)


class FindingsRequest(BaseModel):
    """A findings report to queue; the worker runs it (about 2 minutes with reconstruction on CPU)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        None, min_length=1, max_length=200, description="Target model [default: the served one]."
    )
    reconstruction: bool = Field(
        True,
        strict=True,
        description="Measure claim (i): evaluate the AP-MAE checkpoint on its test split (about 2 minutes).",
    )
    stability_heads: int = Field(
        27, ge=0, le=270, strict=True, description="Heads sampled for the two-halves cluster stability."
    )
    experiment_id: int | None = Field(
        None,
        ge=1,
        le=2**62,
        strict=True,
        description="Ablation experiment (its job id) for the dose curve [default: the newest succeeded].",
    )


class ReportStatus(BaseModel):
    """Where the model's report stands: `ready` (a report exists, nothing newer pending), `queued` or
    `running` (`job` is that job), `failed` or `cancelled` (the newest report job; `job` says why), `none`
    (no report job was ever made). `message` says it in words, with what to do."""

    state: Literal["none", "queued", "running", "ready", "failed", "cancelled"]
    job: JobPublic | None
    message: str


class FindingsPublic(BaseModel):
    """The newest report of a model (null until one succeeded), the paper's statements it is set beside,
    and the status of report jobs."""

    model: str
    findings: Findings | None
    job_id: int | None = Field(description="The report job whose result `findings` is.")
    finished_at: datetime | None
    claims: dict[str, str] = Field(description="The paper's statement per section (from its abstract).")
    status: ReportStatus


@dataclass(frozen=True)
class _Reports:
    """A model's report jobs: the newest usable report, the newest pending job, the newest job."""

    report: Job | None
    findings: Findings | None
    pending: Job | None
    newest: Job | None
    unreadable: Job | None  # a newer succeeded report whose result no longer fits `Findings`


def _reports(store: Store, model: str, default_model: str) -> _Reports:
    jobs = [
        j
        for j in jobs_of_kind(store, FINDINGS_REPORT, _RECENT_REPORTS)
        if job_model(j.parameters, default_model) == model
    ]
    pending = next((j for j in jobs if j.state in _PENDING), None)
    unreadable = None
    for job in jobs:
        if job.state != "succeeded" or not job.result:
            continue
        try:
            findings = findings_from_result(job.result)
        except ValidationError:
            # Made by a version whose report had another shape: skip to an older one, and say so.
            unreadable = unreadable or job
            continue
        return _Reports(job, findings, pending, jobs[0], unreadable)
    return _Reports(None, None, pending, jobs[0] if jobs else None, unreadable)


def _status(r: _Reports, model: str) -> ReportStatus:
    if r.pending is not None:
        job = job_public(r.pending)
        where = f"{job.progress_done} of {job.progress_total} sections" if job.progress_total else "starting"
        verb = "is waiting for the worker" if job.state == "queued" else f"is running ({where})"
        return ReportStatus(
            state=job.state,  # type: ignore[arg-type]
            job=job,
            message=f"Report job #{job.id} for {model} {verb}; this page shows it when it is done.",
        )
    if r.newest is not None and r.newest.state in ("failed", "cancelled"):
        ended = f"The newest report job #{r.newest.id} for {model} was {r.newest.state}"
        return ReportStatus(
            state=r.newest.state,  # type: ignore[arg-type]
            job=job_public(r.newest),
            message=f"{ended}{f': {r.newest.error}' if r.newest.error else ''}. To try again, {HOW_TO_MAKE}",
        )
    if r.findings is not None and r.report is not None:
        return ReportStatus(state="ready", job=None, message=f"Report job #{r.report.id} for {model}.")
    if r.unreadable is not None:
        return ReportStatus(
            state="none",
            job=None,
            message=f"Report job #{r.unreadable.id} for {model} was made by an older version of attnlens "
            f"and cannot be read any more. To make a new one, {HOW_TO_MAKE}",
        )
    return ReportStatus(
        state="none",
        job=None,
        message=f"No findings report has been made for {model} yet. To make one, {HOW_TO_MAKE}",
    )


@router.get("/findings", response_model=FindingsPublic)
def read_findings(store: StoreDep, settings: SettingsDep, model: ModelQuery = None) -> FindingsPublic:
    """The newest succeeded findings report of a model (the paper's five claims measured on its atlas),
    with the paper's statement per section and the status of report jobs. Before any report: 200 with
    `findings: null` and a status saying what is queued or how to make one."""
    name = model or settings.model.name
    r = _reports(store, name, settings.model.name)
    return FindingsPublic(
        model=name,
        findings=r.findings,
        job_id=None if r.report is None else r.report.id,
        finished_at=None if r.report is None else r.report.finished_at,
        claims=PAPER_CLAIMS,
        status=_status(r, name),
    )


@router.post("/findings", response_model=JobPublic, status_code=202)
def create_findings(
    body: FindingsRequest, store: StoreDep, settings: SettingsDep, session: SessionDep
) -> JobPublic:
    """Queue a findings report job; follow it with GET /api/jobs/{id}, then read GET /api/findings. An
    unknown model or experiment id is refused (404), as is an experiment that failed or was cancelled
    (400): its dose curve would silently fall back to nothing."""
    name = body.model or settings.model.name
    if name != settings.model.name and name not in atlas_models(session):
        raise NotFound(
            f"the atlas holds no inferences of model {name!r}; its models: {atlas_models(session)}."
        )
    if body.experiment_id is not None:
        try:
            experiment = get_job(store, body.experiment_id)
        except NotFound:
            experiment = None
        if experiment is None or experiment.kind != ABLATION_EXPERIMENT:
            raise NotFound(
                f"there is no ablation experiment with id {body.experiment_id}; list them with "
                "GET /api/jobs, or leave experiment_id out to use the newest."
            )
        if experiment.state in ("failed", "cancelled"):
            raise InvalidInput(
                f"experiment {body.experiment_id} was {experiment.state}; pick one that succeeded, or leave "
                "experiment_id out to use the newest."
            )
    parameters = {
        "model": name,
        "checkpoint": "default",
        "reconstruction": body.reconstruction,
        "stability_heads": body.stability_heads,
        "experiment_id": body.experiment_id,
    }
    return job_public(get_job(store, enqueue_job(store, FINDINGS_REPORT, parameters)))


def _newest(store: Store, settings_model: str, model: str | None) -> Findings:
    name = model or settings_model
    r = _reports(store, name, settings_model)
    if r.findings is None:
        raise NotFound(f"there is no findings report for {name} to download yet. To make one, {HOW_TO_MAKE}")
    return r.findings


def _filename(model: str, suffix: str) -> str:
    # Model names can hold slashes ("bigcode/starcoder2-3b"); a file name cannot.
    return f"findings-{re.sub(r'[^A-Za-z0-9._-]+', '-', model).strip('-') or 'model'}.{suffix}"


@router.get(
    "/findings/report.md",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}}, "description": "The report as Markdown."}},
)
def download_markdown(store: StoreDep, settings: SettingsDep, model: ModelQuery = None) -> Response:
    """The newest findings report as Markdown (the figures are in the HTML version); 404 before any."""
    findings = _newest(store, settings.model.name, model)
    return Response(
        to_markdown(findings),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(findings.model, "md")}"'},
    )


@router.get(
    "/findings/report.html",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "The report as one self-contained page."}},
)
def download_html(
    store: StoreDep,
    settings: SettingsDep,
    model: ModelQuery = None,
    inline: Annotated[bool, Query(description="Show it in the browser instead of downloading it.")] = False,
) -> HTMLResponse:
    """The newest findings report as one self-contained HTML page with its figures (plotly.js inlined, so
    it opens offline); 404 before any."""
    findings = _newest(store, settings.model.name, model)
    disposition = "inline" if inline else "attachment"
    return HTMLResponse(
        to_html(findings),
        headers={"Content-Disposition": f'{disposition}; filename="{_filename(findings.model, "html")}"'},
    )
