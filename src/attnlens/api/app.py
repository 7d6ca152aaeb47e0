"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from attnlens import __version__
from attnlens.api.auth import require_token
from attnlens.api.body_limit import BodySizeLimit
from attnlens.api.errors import install_error_handlers
from attnlens.api.routes import (
    ablations,
    analyses,
    analyze,
    anomalies,
    atlas_models,
    clusters,
    cross_model,
    experiments,
    exports,
    families,
    findings,
    heads,
    health,
    inferences,
    jobs,
    maps,
    notes,
    patterns,
    predictors,
    registries,
    results,
    sweeps,
    tasks,
)
from attnlens.api.static import mount_frontend
from attnlens.atlas.indexing import open_repaired_index
from attnlens.config import Settings
from attnlens.index import PatternIndex
from attnlens.service.protocol import WorkerClient
from attnlens.store import Store, open_store


def open_index(settings: Settings, store: Store) -> PatternIndex:
    """The atlas's indexes, repaired from the database where damaged or behind it (`open_repaired_index`).
    A data dir still holding the old single index file (every space mixed in one) is converted once, here:
    adopted as the space's index when the database holds one space (as the demo atlas does), else rebuilt
    per space from the database."""
    return open_repaired_index(settings, store)


def create_app(settings: Settings, worker: WorkerClient, store: Store | None = None) -> FastAPI:
    """Build the app. `worker` answers model questions (in-process under `attnlens serve`); the store is
    opened (and migrated) from `settings` unless one is given."""
    app = FastAPI(
        title="attnlens",
        version=__version__,
        description="Explore, search and test the attention heads of code language models (AP-MAE).",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served by `mount_frontend` from local assets (FastAPI's loads them from a CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.worker = worker
    app.state.store = store if store is not None else open_store(settings)
    app.state.index = open_index(settings, app.state.store)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    if settings.api.bearer_token is not None:
        require_token(app, settings.api.bearer_token)
    if settings.api.cors_origins:
        # Added last, so outermost: a browser's preflight (OPTIONS, which carries no token) is answered here.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    for module in (
        health,
        analyses,
        inferences,
        patterns,
        ablations,
        sweeps,
        analyze,
        experiments,
        jobs,
        results,
        maps,
        clusters,
        registries,
        predictors,
        tasks,
        atlas_models,
        findings,
        exports,
        heads,
        anomalies,
        notes,
        families,
        cross_model,
    ):
        app.include_router(module.router, prefix="/api")
    mount_frontend(app, settings)
    return app
