"""The worker an API process talks to: the worker service named by `api.worker_url` (split deployment), or
one started in this process. `attnlens serve` and `backend.main` both come through here."""

from __future__ import annotations

from attnlens.config import Settings
from attnlens.service.protocol import WorkerClient


def worker_for(settings: Settings) -> WorkerClient:
    """Connect to `api.worker_url` with the shared `api.token`; unset, load the models here (in the
    background) and run the job queue. Only the local path imports torch."""
    if settings.api.worker_url:
        from attnlens.service.http import HttpWorker

        token = settings.api.token.get_secret_value() if settings.api.token else None
        return HttpWorker(settings.api.worker_url, token=token)
    from attnlens.service.local import LocalWorker

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = LocalWorker(settings)
    worker.start(background=True, run_jobs=True)
    return worker
