"""The worker's job runner: claims queued jobs from the database, runs them, reports progress.

Jobs survive restarts: they live in the `job` table. A job whose process died (kill -9 included) is put
back in the queue, by `requeue_orphans` at start for this machine's dead processes, or by the heartbeat
timeout for any machine, and its handler resumes where the database says it got to.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Mapping

from attnlens.atlas.jobs import JobCancelled, JobContext, JobHandler, ModelRuntime
from attnlens.config import Settings
from attnlens.contracts.job_parameters import DRIVEN_ENGINES
from attnlens.errors import AttnLensError, JobNotHeld
from attnlens.store import Store
from attnlens.store.jobs import (
    acknowledge_cancel,
    claim_job,
    claim_queued_job,
    fail_job,
    finish_job,
    requeue_job_of,
    requeue_stale_jobs,
    running_jobs,
)
from attnlens.store.models import Job

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def requeue_orphans(store: Store) -> list[int]:
    """Requeue running jobs held by processes of this machine that no longer exist."""
    host = socket.gethostname()
    requeued = []
    for job_id, worker in running_jobs(store):
        if not worker or not worker.startswith(f"{host}:"):
            continue
        pid = int(worker.rsplit(":", 1)[1])
        if pid == os.getpid() or _alive(pid):
            continue
        if requeue_job_of(store, job_id, worker, "requeued: its process had stopped"):
            requeued.append(job_id)
    return requeued


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobRunner:
    """Runs jobs of the kinds it has handlers for, one at a time, in a background thread."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        runtime: ModelRuntime | None,
        handlers: Mapping[str, JobHandler],
    ) -> None:
        self.settings, self.store, self.runtime, self.handlers = settings, store, runtime, dict(handlers)
        self.worker = worker_name()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="attnlens-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        requeued = requeue_orphans(self.store)
        if requeued:
            log.info("requeued jobs %s left running by stopped processes", requeued)
        while not self._stop.is_set():
            try:
                requeue_stale_jobs(self.store, self.settings.db.job_stale_after_s)
                ran = self.run_once()
            except Exception:  # the loop must outlive any one failure
                log.exception("job runner error")
                ran = False
            if not ran:
                self._stop.wait(1.0)

    def run_once(self) -> bool:
        """Claim and run one job; False when none was waiting."""
        job = claim_job(self.store, self.worker, kinds=sorted(self.handlers), skip_engines=DRIVEN_ENGINES)
        if job is None:
            return False
        context = JobContext(self.settings, self.store, job, self.worker, self.runtime)
        log.info("job %d (%s) started", job.id, job.kind)
        try:
            result = self.handlers[job.kind](context)
        except JobCancelled:
            acknowledge_cancel(self.store, job.id, self.worker)
            return True
        except JobNotHeld:
            log.warning("job %d was taken from this worker (heartbeat timeout); dropping it", job.id)
            return True
        except AttnLensError as exc:
            fail_job(self.store, job.id, self.worker, exc.message)
            return True
        except Exception as exc:
            log.exception("job %d failed", job.id)
            fail_job(
                self.store,
                job.id,
                self.worker,
                f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
            )
            return True
        if context.cancel_requested:
            acknowledge_cancel(self.store, job.id, self.worker, result)
        else:
            finish_job(self.store, job.id, self.worker, result)
        log.info("job %d (%s) done", job.id, job.kind)
        return True


def run_job_here(
    settings: Settings,
    store: Store,
    job_id: int,
    runtime: ModelRuntime | None,
    handler: JobHandler,
    on_progress: Callable[[int, int | None, str | None], None] | None = None,
) -> Job:
    """Claim one specific queued job for this process and run it in the foreground (the CLI's way)."""
    me = worker_name()
    job = claim_queued_job(store, job_id, me)
    context = JobContext(settings, store, job, me, runtime, on_progress=on_progress)
    try:
        result = handler(context)
    except JobCancelled:
        return acknowledge_cancel(store, job_id, me)
    except Exception as exc:
        message = exc.message if isinstance(exc, AttnLensError) else f"{type(exc).__name__}: {exc}"
        fail_job(store, job_id, me, message)
        raise
    if context.cancel_requested:
        return acknowledge_cancel(store, job_id, me, result)
    return finish_job(store, job_id, me, result)
