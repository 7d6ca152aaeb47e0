"""ASGI entry point of the API: `uvicorn backend.main:create_app --factory`.

With `ATTNLENS_API__WORKER_URL` set (the split deployment in docker-compose.yml) the API reaches the worker
service over HTTP and never imports torch; unset, the worker runs in this process, as under `attnlens serve`.
"""

from __future__ import annotations

from fastapi import FastAPI

from attnlens.api import create_app as _create_app
from attnlens.config import get_settings
from attnlens.logs import configure_logging


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    if settings.api.worker_url:
        from attnlens.service.http import HttpWorker

        return _create_app(settings, HttpWorker(settings.api.worker_url))
    from attnlens.service.local import LocalWorker

    worker = LocalWorker(settings)
    worker.start(background=True, run_jobs=True)
    return _create_app(settings, worker)
