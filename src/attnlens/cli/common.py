"""Shared CLI plumbing: building Settings from flags, printing errors plainly."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from attnlens.config import Settings
from attnlens.errors import AttnLensError
from attnlens.logs import configure_logging

if TYPE_CHECKING:
    from attnlens.atlas.jobs import ModelRuntime
    from attnlens.store import Store


def build_settings(*, data_dir: Path | None, log_level: str | None) -> Settings:
    settings = Settings().with_overrides(data_dir=data_dir, log_level=log_level)
    configure_logging(settings.log_level)
    return settings


def settings_of(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.find_root().obj
    return settings


def run(app: typer.Typer, argv: list[str] | None) -> None:
    try:
        app(args=argv, standalone_mode=True)
    except AttnLensError as exc:
        typer.secho(f"error: {exc.message}", err=True, fg=typer.colors.RED)
        sys.exit(2)


def run_job_with_progress(
    settings: Settings,
    store: Store,
    kind: str,
    parameters: dict[str, Any],
    runtime: ModelRuntime | None,
    unit: str,
) -> dict[str, Any]:
    """Queue a job of `kind` (or resume the queued or killed one with the same parameters) and run it here
    with a progress bar; returns its row's state and result."""
    from tqdm import tqdm

    from attnlens.atlas.handlers import JOB_HANDLERS
    from attnlens.service.jobs import requeue_orphans, run_job_here
    from attnlens.store.jobs import enqueue_job, list_jobs

    # A job killed earlier was left "running"; requeue it and carry on with it (resume).
    requeue_orphans(store)
    same = [
        j
        for j in list_jobs(store, states=["queued"], limit=1000)
        if j.kind == kind and j.parameters == parameters
    ]
    job_id = same[-1].id if same else enqueue_job(store, kind, parameters)
    bar = tqdm(total=None, unit=unit, desc=f"{kind} (job {job_id})")

    def on_progress(done: int, total: int | None, message: str | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.set_postfix_str(message or "")
        bar.refresh()

    job = run_job_here(settings, store, job_id, runtime, JOB_HANDLERS[kind], on_progress)
    bar.close()
    return {
        "job": job.id,
        "state": job.state,
        **(job.result or {}),
        **({"error": job.error} if job.error else {}),
    }
