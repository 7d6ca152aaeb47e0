"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from attnlens import __version__
from attnlens.api.errors import install_error_handlers
from attnlens.api.routes import (
    ablations,
    analyze,
    clusters,
    experiments,
    health,
    inferences,
    jobs,
    maps,
    patterns,
    predictors,
    registries,
    tasks,
)
from attnlens.api.static import mount_frontend
from attnlens.config import Settings
from attnlens.index import PatternIndex
from attnlens.service.protocol import WorkerClient
from attnlens.store import Store, open_store


def create_app(settings: Settings, worker: WorkerClient, store: Store | None = None) -> FastAPI:
    """Build the app. `worker` answers model questions (in-process under `attnlens serve`); the store is
    opened (and migrated) from `settings` unless one is given."""
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
    app.state.store = store if store is not None else open_store(settings)
    app.state.index = PatternIndex.open(settings, app.state.store)
    install_error_handlers(app)
    for module in (
        health,
        inferences,
        patterns,
        ablations,
        analyze,
        experiments,
        jobs,
        maps,
        clusters,
        registries,
        predictors,
        tasks,
    ):
        app.include_router(module.router, prefix="/api")
    mount_frontend(app, settings)
    return app
