"""ASGI entry point of the API: `uvicorn backend.main:create_app --factory`.

With `ATTNLENS_API__WORKER_URL` set (the split deployment in docker-compose.yml) the API reaches the worker
service over HTTP and never imports torch; unset, the worker runs in this process, as under `attnlens serve`.
uvicorn binds where its own `--host` says; this factory checks `api.host` (ATTNLENS_API__HOST), so give the
same value to both, or start with `python -m backend`, which reads it from the settings.
"""

from __future__ import annotations

from fastapi import FastAPI

from attnlens.api import create_app as _create_app
from attnlens.api.auth import check_exposure
from attnlens.config import get_settings
from attnlens.logs import configure_logging
from attnlens.service.connect import worker_for


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    check_exposure(settings.api, settings.api.host, service="the attnlens API")
    return _create_app(settings, worker_for(settings))
