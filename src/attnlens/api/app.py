"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from attnlens import __version__
from attnlens.api.errors import install_error_handlers
from attnlens.api.routes import health
from attnlens.config import Settings
from attnlens.service.protocol import WorkerClient


def create_app(settings: Settings, worker: WorkerClient) -> FastAPI:
    """Build the app. `worker` answers model questions (in-process under `attnlens serve`)."""
    app = FastAPI(
        title="attnlens",
        version=__version__,
        description="Explore, search and test the attention heads of code language models (AP-MAE).",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.worker = worker
    install_error_handlers(app)
    app.include_router(health.router, prefix="/api")
    return app
