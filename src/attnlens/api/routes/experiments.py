"""Population ablation experiments, run as jobs by the worker."""

from __future__ import annotations

from fastapi import APIRouter

from attnlens.api.deps import SettingsDep, StoreDep
from attnlens.api.routes.jobs import job_public
from attnlens.api.schemas import ExperimentRequest, JobPublic
from attnlens.contracts.jobs import ABLATION_EXPERIMENT, ATLAS_BUILD, experiment_parameters
from attnlens.store.jobs import enqueue_job, get_job, list_jobs

router = APIRouter(tags=["experiments"])


@router.post("/experiments", response_model=JobPublic, status_code=202)
def create_experiment(body: ExperimentRequest, store: StoreDep, settings: SettingsDep) -> JobPublic:
    """Queue an experiment; follow it with GET /api/jobs/{id}. Its result holds one row per (rule, n)."""
    task = body.task
    corpus = body.corpus
    if corpus is None:
        builds = [
            j for j in list_jobs(store, states=["succeeded", "running"], limit=200) if j.kind == ATLAS_BUILD
        ]
        corpus = builds[0].parameters["corpus"] if builds else settings.atlas.demo_corpus
    parameters = experiment_parameters(task, body.rules, body.n, body.scenarios, corpus, body.seed)
    return job_public(get_job(store, enqueue_job(store, ABLATION_EXPERIMENT, parameters)))
