"""`attnlens worker serve`: the worker as its own HTTP service (split deployment)."""

from __future__ import annotations

from typing import Annotated

import typer

from attnlens.cli.common import settings_of
from attnlens.cli.serve import INSECURE_HELP

worker_app = typer.Typer(help="The model worker as a separate service.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(worker_app, name="worker")


@worker_app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8001,
    model: Annotated[
        str | None, typer.Option(help="Model preset, hub id or folder (default: smollm2).")
    ] = None,
    insecure_no_token: Annotated[bool, typer.Option("--insecure-no-token", help=INSECURE_HELP)] = False,
) -> None:
    """Load the models, run queued jobs, and answer the API's model calls over HTTP."""
    import uvicorn

    from attnlens.api.auth import check_exposure
    from attnlens.api.worker_app import create_worker_app
    from attnlens.service.local import LocalWorker

    settings = settings_of(ctx)
    if model or insecure_no_token:
        merged = settings.model_dump()
        if model:
            merged["model"]["name"] = model
        merged["api"]["insecure_no_token"] = merged["api"]["insecure_no_token"] or insecure_no_token
        settings = type(settings).model_validate(merged)
    check_exposure(settings.api, host, service="the attnlens worker service")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = LocalWorker(settings)
    worker.start(background=True, run_jobs=True)
    typer.echo(f"attnlens worker: http://{host}:{port}/worker/status (model {settings.model.name})")
    uvicorn.run(
        create_worker_app(
            worker,
            max_body_bytes=settings.api.max_body_bytes,
            token=settings.api.token.get_secret_value() if settings.api.token else None,
        ),
        host=host,
        port=port,
        log_level="warning",
    )
