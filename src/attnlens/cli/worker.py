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
    from attnlens.service.connect import start_local_worker

    settings = settings_of(ctx)
    merged = settings.model_dump()
    if model:
        merged["model"]["name"] = model
    if insecure_no_token:
        merged["api"]["insecure_no_token"] = True
    settings = type(settings).model_validate(merged)
    check_exposure(settings.api, host, service="the attnlens worker service")
    worker = start_local_worker(settings)
    typer.echo(f"attnlens worker: http://{host}:{port}/worker/status (model {settings.model.name})")
    uvicorn.run(
        create_worker_app(
            worker,
            max_body_bytes=settings.api.max_body_bytes,
            token=settings.api.bearer_token,
        ),
        host=host,
        port=port,
        log_level="warning",
    )
