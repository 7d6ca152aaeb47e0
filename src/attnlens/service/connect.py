"""The worker an API process talks to: the worker service named by `api.worker_url` (split deployment), or
one started in this process. `attnlens serve` and `backend.main` both come through here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnlens.config import Settings
from attnlens.service.protocol import WorkerClient

if TYPE_CHECKING:  # torch comes with it: imported only on the local path
    from attnlens.service.local import LocalWorker


def worker_for(settings: Settings) -> WorkerClient:
    """Connect to `api.worker_url` with the shared `api.token`; unset, load the models here (in the
    background) and run the job queue. Only the local path imports torch."""
    if settings.api.worker_url:
        from attnlens.service.http import HttpWorker

        return HttpWorker(settings.api.worker_url, token=settings.api.bearer_token)
    return start_local_worker(settings)


def start_local_worker(settings: Settings) -> LocalWorker:
    """A worker in this process: the models load in the background, and it runs the job queue."""
    from attnlens.service.local import LocalWorker

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = LocalWorker(settings)
    worker.start(background=True, run_jobs=True)
    return worker
