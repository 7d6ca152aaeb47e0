"""`attnlens atlas build|status`: build an atlas in the foreground (a job with a progress bar)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from attnlens.cli.common import settings_of

atlas_app = typer.Typer(help="Build and inspect atlases (scenarios -> model -> AP-MAE -> SQLite + FAISS).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(atlas_app, name="atlas")


@atlas_app.command("build")
def build(
    ctx: typer.Context,
    corpus: Annotated[str, typer.Option(help="Folder of .java files, zip/jar of sources, JSONL, or hf:<dataset>.")],
    model: Annotated[str | None, typer.Option(help="Target model preset, hub id or folder (default: smollm2).")] = None,
    per_task: Annotated[int, typer.Option(help="Scenarios per task.", min=1)] = 50,
    tasks: Annotated[str, typer.Option(help="`all` or comma-separated task names.")] = "all",
    seed: Annotated[int | None, typer.Option(help="Mining seed (default: mining.seed).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Scenarios per forward pass (default: atlas.batch_size).")] = None,
    checkpoint: Annotated[str | None, typer.Option(help="AP-MAE checkpoint folder (default: the shipped one).")] = None,
) -> None:
    """Mine scenarios, run the model, embed every head, store and index them. Re-run to resume."""
    from tqdm import tqdm

    from attnlens.atlas.jobs import ATLAS_BUILD, build_parameters, run_atlas_build
    from attnlens.service.jobs import requeue_orphans, run_job_here
    from attnlens.service.local import LocalWorker
    from attnlens.store import open_store
    from attnlens.store.jobs import enqueue_job, list_jobs

    settings = settings_of(ctx)
    merged = settings.model_dump()
    if model:
        merged["model"]["name"] = model
    if checkpoint:
        merged["apmae"]["checkpoint"] = checkpoint
    settings = type(settings).model_validate(merged)
    parameters = build_parameters(
        corpus, tasks, per_task, settings.mining.seed if seed is None else seed, batch_size or settings.atlas.batch_size
    )
    store = open_store(settings)
    typer.echo(f"loading {settings.model.name} and AP-MAE ({settings.apmae.checkpoint})...")
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    worker.model, worker.apmae  # noqa: B018 - raise now, with the reason, if either failed to load
    # A build killed earlier left its job "running"; requeue it and carry on with it (resume).
    requeue_orphans(store)
    same = [j for j in list_jobs(store, states=["queued"], limit=1000) if j.kind == ATLAS_BUILD and j.parameters == parameters]
    job_id = same[-1].id if same else enqueue_job(store, ATLAS_BUILD, parameters)
    bar = tqdm(total=None, unit="scenario", desc=f"atlas build (job {job_id})")

    def on_progress(done: int, total: int | None, message: str | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.set_postfix_str(message or "")
        bar.refresh()

    job = run_job_here(settings, store, job_id, worker, run_atlas_build, on_progress)
    bar.close()
    typer.echo(json.dumps({"job": job.id, "state": job.state, **(job.result or {})}, indent=2, default=str))


@atlas_app.command("status")
def status(ctx: typer.Context) -> None:
    """Counts of scenarios, inferences and head patterns, the index, and recent jobs."""
    from attnlens.atlas.summary import atlas_counts
    from attnlens.store import open_store
    from attnlens.store.jobs import list_jobs

    settings = settings_of(ctx)
    store = open_store(settings)
    typer.echo(json.dumps(atlas_counts(settings, store), indent=2))
    for job in list_jobs(store, limit=10):
        total = f"/{job.progress_total}" if job.progress_total else ""
        typer.echo(f"job {job.id:>4} {job.kind:<14} {job.state:<10} {job.progress_done}{total} {job.message or job.error or ''}")
