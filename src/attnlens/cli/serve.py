"""`attnlens serve`: the web app with an in-process worker (what `make run` starts)."""

from __future__ import annotations

from typing import Annotated

import typer

from attnlens.cli.common import settings_of


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        model: Annotated[
            str | None, typer.Option(help="Model preset, hub id or folder (default: smollm2).")
        ] = None,
        host: Annotated[str | None, typer.Option(help="Interface to bind (default: 127.0.0.1).")] = None,
        port: Annotated[int | None, typer.Option(help="Port (default: 8000).")] = None,
    ) -> None:
        """Start the web app and a worker in one process; the model loads in the background."""
        import uvicorn

        from attnlens.api import create_app
        from attnlens.service.local import LocalWorker

        settings = settings_of(ctx)
        merged = settings.model_dump()
        if model:
            merged["model"]["name"] = model
        if host:
            merged["api"]["host"] = host
        if port:
            merged["api"]["port"] = port
        settings = type(settings).model_validate(merged)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        worker = LocalWorker(settings)
        worker.start(background=True, run_jobs=True)
        app = create_app(settings, worker)
        typer.echo(
            f"attnlens: serving on http://{settings.api.host}:{settings.api.port}/ "
            f"(model {settings.model.name} loading in the background; data in {settings.data_dir})"
        )
        uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_level="warning")
