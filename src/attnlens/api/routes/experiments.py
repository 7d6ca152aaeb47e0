"""Population ablation experiments, run as jobs by the worker."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from attnlens.api.deps import SettingsDep, StoreDep, WorkerDep
from attnlens.api.routes.jobs import job_public
from attnlens.api.schemas import ExperimentRequest, JobPublic
from attnlens.config import Settings
from attnlens.contracts.jobs import (
    ABLATION_EXPERIMENT,
    ATLAS_BUILD,
    ATLAS_CORPUS,
    DEMO_CORPUS,
    check_head_counts,
    experiment_parameters,
    resolve_corpus,
    served_corpora,
)
from attnlens.errors import ModelUnavailable
from attnlens.service.protocol import WorkerClient
from attnlens.store import Store
from attnlens.store.jobs import enqueue_job, get_job, list_jobs

router = APIRouter(tags=["experiments"])


def latest_build_corpus(store: Store) -> str | None:
    """The corpus of the newest atlas build that ran or runs (builds are queued by the CLI and `serve`
    only, so this location is the operator's choice), or None before any."""
    recent = list_jobs(store, states=["succeeded", "running"], limit=200)
    builds = [j for j in recent if j.kind == ATLAS_BUILD]
    return str(builds[0].parameters["corpus"]) if builds else None


def corpus_names(settings: Settings, store: Store) -> dict[str, str]:
    """Every corpus name the API takes -> its location (GET /api/corpora lists the accepted ones)."""
    return served_corpora(
        settings.mining.corpora, demo=settings.atlas.demo_corpus, latest_build=latest_build_corpus(store)
    )


def _served_shape(worker: WorkerClient) -> tuple[int, int, str] | None:
    """(layers, heads per layer, name) of the worker's model; None while it loads (the job checks then)."""
    try:
        n_layers, n_heads = worker.model_shape()
    except ModelUnavailable:
        return None
    return n_layers, n_heads, str(worker.status().get("model_name") or "the served model")


@router.post("/experiments", response_model=JobPublic, status_code=202)
def create_experiment(
    body: ExperimentRequest, store: StoreDep, settings: SettingsDep, worker: WorkerDep
) -> JobPublic:
    """Queue an experiment; follow it with GET /api/jobs/{id}. Its result holds one row per (rule, n), with
    the heads each row ablated. A head count above the served model's is refused (400 invalid_input); when
    `n` is left out, the default counts above it are dropped. `corpus` is a name from GET /api/corpora (or
    a path under the configured corpus root); anything else is refused (400 corpus_error)."""
    task = body.task
    registered = corpus_names(settings, store)
    # Left out: the latest build's corpus, else the demo corpus, both by name so the same rules apply.
    if body.corpus is None:
        requested = ATLAS_CORPUS if ATLAS_CORPUS in registered else DEMO_CORPUS
    else:
        requested = body.corpus
    by_name = partial(
        resolve_corpus,
        registered=registered,
        root=settings.mining.corpus_root,
        allow_hf=settings.mining.allow_hf_datasets,
    )
    shape = _served_shape(worker)
    counts = body.n
    if shape is not None and "n" not in body.model_fields_set:
        counts = [x for x in counts if x <= shape[0] * shape[1]]
    parameters = experiment_parameters(
        task,
        body.rules,
        counts,
        body.scenarios,
        requested,
        body.seed,
        balanced=body.balanced,
        corpus_check=by_name,
    )
    if shape is not None:
        check_head_counts(counts, *shape)
    return job_public(get_job(store, enqueue_job(store, ABLATION_EXPERIMENT, parameters)))
