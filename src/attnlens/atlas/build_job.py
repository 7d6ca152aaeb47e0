"""The `atlas_build` job (mine, run, embed, store, index) and the demo atlas queued on an empty data dir."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from attnlens.atlas.build import BuildRequest, run_build
from attnlens.atlas.indexing import sync_index
from attnlens.atlas.jobs import JobContext, require
from attnlens.config import Settings
from attnlens.contracts.job_parameters import build_parameters
from attnlens.contracts.jobs import ATLAS_BUILD, ATLAS_CLUSTER, ATLAS_MAP, PATTERN_FAMILIES, TRAIN_PREDICTORS
from attnlens.store import Store
from attnlens.store.jobs import enqueue_job, has_job_of_kind

log = logging.getLogger(__name__)


def run_atlas_build(ctx: JobContext) -> dict[str, Any]:
    """Mine, run, embed and store, here (`engine` local) or on Ray (`engine` ray); sync the index every few
    batches so search fills in as it goes."""
    p = ctx.job.parameters
    request = BuildRequest(
        corpus=require(p, "corpus", str),
        tasks=require(p, "tasks", list),
        per_task=require(p, "per_task", int),
        seed=int(p.get("seed", 0)),
        batch_size=int(p.get("batch_size", ctx.settings.atlas.batch_size)),
    )
    every = ctx.settings.atlas.index_save_every
    calls = {"n": 0}

    def progress(done: int, total: int | None, message: str) -> None:
        calls["n"] += 1
        if calls["n"] % every == 0:
            sync_index(ctx.settings, ctx.store)
        ctx.progress(done, total, message)

    if p.get("engine") == "ray":
        # The models live in the Ray actors: this process only mines, dispatches and counts.
        from attnlens.apmae.load import embedder_label
        from attnlens.atlas.ray_build import RayPlan, run_ray_build

        settings = ctx.settings
        if (model := p.get("model")) and model != settings.model.name:  # a build of another model
            merged = settings.model_dump()
            merged["model"]["name"] = model
            settings = type(settings).model_validate(merged)
        report = run_ray_build(
            settings,
            ctx.store,
            request,
            RayPlan.from_parameters(p),
            embedder=embedder_label(settings.apmae.checkpoint),
            progress=progress,
            should_stop=ctx.should_stop,
        )
    else:
        runtime = ctx.models
        report = run_build(
            ctx.settings,
            ctx.store,
            runtime.model,
            runtime.apmae.embed_with_errors,
            request,
            embedder=runtime.embedder_name,
            progress=progress,
            should_stop=ctx.should_stop,
            run_model=ctx.run_model,
        )
    result = report.to_dict()
    result["index"] = sync_index(ctx.settings, ctx.store)
    return result


# The analyses the demo atlas gets after its build, in the order the worker runs them.
DEMO_CHAIN = (ATLAS_CLUSTER, ATLAS_MAP, TRAIN_PREDICTORS, PATTERN_FAMILIES)


def queue_demo_build(settings: Settings, store: Store) -> int | None:
    """Queue the demo atlas build if the atlas has never had a build and the demo corpus is here; returns
    the build's job id."""
    if not settings.atlas.build_demo:
        return None
    if has_job_of_kind(store, ATLAS_BUILD):
        return None
    corpus = settings.atlas.demo_corpus
    if not Path(corpus).exists():
        log.warning("no demo atlas: %s is missing (apt-get install openjdk-17-source)", corpus)
        return None
    parameters = build_parameters(
        corpus,
        settings.atlas.demo_tasks,
        settings.atlas.demo_per_task,
        settings.mining.seed,
        settings.atlas.batch_size,
    )
    parameters["demo"] = True
    job_id = enqueue_job(store, ATLAS_BUILD, parameters)
    # The runner takes jobs in id order, one at a time: each analysis starts once the build is done.
    # The families come last: the gallery, map and predictors a newcomer opens first are ready before them.
    for kind in DEMO_CHAIN:
        enqueue_job(store, kind, {"demo": True})
    log.info(
        "queued the demo atlas (job %d, then clustering, map, predictors and pattern families): %d scenarios "
        "per task from %s",
        job_id, settings.atlas.demo_per_task, corpus,
    )  # fmt: skip
    return job_id
