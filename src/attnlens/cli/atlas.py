"""`attnlens atlas build|status`: build an atlas in the foreground (a job with a progress bar)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from attnlens.cli.common import run_job_with_progress, settings_of
from attnlens.contracts.job_parameters import DEFAULT_PER_TASK, build_parameters

atlas_app = typer.Typer(
    help="Build and inspect atlases (scenarios -> model -> AP-MAE -> SQLite + FAISS).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(atlas_app, name="atlas")


@atlas_app.command("build")
def build(
    ctx: typer.Context,
    corpus: Annotated[
        str, typer.Option(help="Folder of .java files, zip/jar of sources, JSONL, or hf:<dataset>.")
    ],
    model: Annotated[
        str | None, typer.Option(help="Target model preset, hub id or folder (default: smollm2).")
    ] = None,
    per_task: Annotated[int, typer.Option(help="Scenarios per task.", min=1)] = DEFAULT_PER_TASK,
    tasks: Annotated[str, typer.Option(help="`all` or comma-separated task names.")] = "all",
    seed: Annotated[int | None, typer.Option(help="Mining seed (default: mining.seed).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Scenarios per forward pass (default: atlas.batch_size).")
    ] = None,
    checkpoint: Annotated[
        str | None, typer.Option(help="AP-MAE checkpoint folder (default: the shipped one).")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="`local`: this process. `ray`: Ray tasks mine, Ray actors run the models.")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster: `auto` (the one this machine is in) or ray://host:10001 "
            "(default: a Ray on this machine only)."
        ),
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option(help="Ray actors, each holding the model and AP-MAE (default: one per GPU, else 1)."),
    ] = None,
    cpus_per_actor: Annotated[float, typer.Option(help="CPUs (and torch threads) per Ray actor.")] = 1.0,
    gpus_per_actor: Annotated[
        float | None, typer.Option(help="GPUs per Ray actor (default: 1 if the cluster has GPUs, else 0).")
    ] = None,
) -> None:
    """Mine scenarios, run the model, embed every head, store and index them. Re-run to resume."""
    from attnlens.contracts.job_parameters import engine_parameters
    from attnlens.contracts.jobs import ATLAS_BUILD
    from attnlens.service.local import LocalWorker
    from attnlens.store import open_store

    settings = settings_of(ctx)
    merged = settings.model_dump()
    if model:
        merged["model"]["name"] = model
    if checkpoint:
        merged["apmae"]["checkpoint"] = checkpoint
    settings = type(settings).model_validate(merged)
    parameters = build_parameters(
        corpus,
        tasks,
        per_task,
        settings.mining.seed if seed is None else seed,
        batch_size or settings.atlas.batch_size,
    )
    if model:  # a build of another model than the served one says so on the Jobs page (and in its pace)
        parameters["model"] = settings.model.name
    parameters |= engine_parameters(
        engine, address=address, actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor
    )
    store = open_store(settings)
    worker = None
    if engine == "local":  # on Ray the actors load the models; this process only mines and dispatches
        typer.echo(f"loading {settings.model.name} and AP-MAE ({settings.apmae.checkpoint})...")
        worker = LocalWorker(settings, store)
        worker.start(background=False)
        worker.model, worker.apmae  # noqa: B018 - raise now, with the reason, if either failed to load
    result = run_job_with_progress(settings, store, ATLAS_BUILD, parameters, worker, "scenario")
    typer.echo(json.dumps(result, indent=2, default=str))


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
        typer.echo(
            f"job {job.id:>4} {job.kind:<14} {job.state:<10} {job.progress_done}{total} "
            f"{job.message or job.error or ''}"
        )
