"""Population ablation experiments, run as jobs by the worker."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from attnlens.api.deps import SettingsDep, StoreDep, WorkerDep
from attnlens.api.routes.jobs import corpus_names, default_corpus, job_public
from attnlens.api.schemas import ExperimentRequest, JobPublic
from attnlens.contracts.jobs import (
    ABLATION_EXPERIMENT,
    check_head_counts,
    experiment_parameters,
    resolve_corpus,
)
from attnlens.errors import ModelUnavailable
from attnlens.service.protocol import WorkerClient
from attnlens.store.jobs import enqueue_job, get_job

router = APIRouter(tags=["experiments"])


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
    requested = default_corpus(registered) if body.corpus is None else body.corpus
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
