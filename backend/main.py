"""ASGI entry point for the split deployment: `uvicorn backend.main:create_app --factory`.

Until the worker's own HTTP service lands (issue 6), this entry point runs the worker in-process, exactly
as `attnlens serve` does; the API module itself never imports torch.
"""

from __future__ import annotations

from fastapi import FastAPI

from attnlens.api import create_app as _create_app
from attnlens.config import get_settings
from attnlens.logs import configure_logging
from attnlens.service.local import LocalWorker


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    worker = LocalWorker(settings)
    worker.start(background=True, run_jobs=True)
    return _create_app(settings, worker)
