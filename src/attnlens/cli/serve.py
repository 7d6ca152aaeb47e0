"""`attnlens serve`: the web app with an in-process worker (what `make run` starts), or, with `api.worker_url`
set, the API alone in front of a worker service."""

from __future__ import annotations

from typing import Annotated

import typer

from attnlens.cli.common import settings_of

INSECURE_HELP = (
    "Listen beyond loopback without a token (anyone who reaches the port can read the atlas and run the "
    "model). Prefer ATTNLENS_API__TOKEN."
)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        model: Annotated[
            str | None, typer.Option(help="Model preset, hub id or folder (default: smollm2).")
        ] = None,
        host: Annotated[str | None, typer.Option(help="Interface to bind (default: 127.0.0.1).")] = None,
        port: Annotated[int | None, typer.Option(help="Port (default: 8000).")] = None,
        insecure_no_token: Annotated[bool, typer.Option("--insecure-no-token", help=INSECURE_HELP)] = False,
    ) -> None:
        """Start the web app and a worker in one process; the model loads in the background."""
        import uvicorn

        from attnlens.api import create_app
        from attnlens.api.auth import check_exposure
        from attnlens.service.connect import worker_for

        settings = settings_of(ctx)
        merged = settings.model_dump()
        if model:
            merged["model"]["name"] = model
        if host:
            merged["api"]["host"] = host
        if port:
            merged["api"]["port"] = port
        if insecure_no_token:
            merged["api"]["insecure_no_token"] = True
        settings = type(settings).model_validate(merged)
        # Before anything loads or listens: refusing after the model loaded would waste a minute.
        check_exposure(settings.api, settings.api.host, service="the attnlens app")
        app = create_app(settings, worker_for(settings))
        where = settings.api.worker_url or "in this process"
        typer.echo(
            f"attnlens: serving on http://{settings.api.host}:{settings.api.port}/ "
            f"(model {settings.model.name}, worker {where}; data in {settings.data_dir}"
            f"{'; token required' if settings.api.token else ''})"
        )
        uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_level="warning")
