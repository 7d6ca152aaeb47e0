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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from attnlens.config import Settings
from attnlens.errors import AttnLensError, InvalidInput, JobNotHeld
from attnlens.store import Store
from attnlens.store.jobs import (
    acknowledge_cancel,
    claim_job,
    fail_job,
    finish_job,
    report_progress,
    requeue_stale_jobs,
)
from attnlens.store.models import Job

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a handler when the job's cancellation was requested."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class JobContext:
    """What a handler gets: the job, the runtime (models), and a way to report progress."""

    settings: Settings
    store: Store
    job: Job
    worker: str
    runtime: Any  # the worker holding the models (LocalWorker)
    cancel_requested: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def progress(self, done: int, total: int | None, message: str | None = None) -> None:
        """Record progress; remember a cancellation request (handlers check `should_stop`)."""
        if report_progress(self.store, self.job.id, self.worker, done=done, total=total, message=message):
            self.cancel_requested = True

    def should_stop(self) -> bool:
        return self.cancel_requested

    def run_model(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a job's model work where the runtime runs model calls (a LocalWorker's model thread, so it
        never overlaps an interactive ablation); a runtime without one runs it here."""
        run = getattr(self.runtime, "run_model", None)
        return run(fn, *args, **kwargs) if run is not None else fn(*args, **kwargs)


JobHandler = Callable[[JobContext], dict[str, Any]]


def requeue_orphans(store: Store) -> list[int]:
    """Requeue running jobs held by processes of this machine that no longer exist."""
    host = socket.gethostname()
    requeued = []
    with store.session() as session:
        running = session.execute(select(Job.id, Job.worker).where(Job.state == "running")).all()
    for job_id, worker in running:
        if not worker or not worker.startswith(f"{host}:"):
            continue
        pid = int(worker.rsplit(":", 1)[1])
        if pid == os.getpid() or _alive(pid):
            continue
        with store.session() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "running", Job.worker == worker)
                .values(state="queued", worker=None, message="requeued: its process had stopped")
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:
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

    def __init__(self, settings: Settings, store: Store, runtime: Any, handlers: dict[str, JobHandler]) -> None:
        self.settings, self.store, self.runtime, self.handlers = settings, store, runtime, handlers
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
        job = claim_job(self.store, self.worker, kinds=sorted(self.handlers))
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
            fail_job(self.store, job.id, self.worker, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
            return True
        if context.cancel_requested:
            acknowledge_cancel(self.store, job.id, self.worker, result)
        else:
            finish_job(self.store, job.id, self.worker, result)
        log.info("job %d (%s) done", job.id, job.kind)
        return True


def require(parameters: dict[str, Any], name: str, kind: type) -> Any:
    """A job parameter of the right type, or `InvalidInput` naming it."""
    value = parameters.get(name)
    if not isinstance(value, kind):
        raise InvalidInput(f"job parameter {name!r} must be a {kind.__name__}, got {value!r}.")
    return value


def run_job_here(
    settings: Settings,
    store: Store,
    job_id: int,
    runtime: Any,
    handler: JobHandler,
    on_progress: Callable[[int, int | None, str | None], None] | None = None,
) -> Job:
    """Claim one specific queued job for this process and run it in the foreground (the CLI's way)."""
    from attnlens.store.base import utc_now
    from attnlens.store.jobs import get_job

    me = worker_name()
    now = utc_now()
    with store.session() as session:
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "queued")
            .values(state="running", worker=me, started_at=now, heartbeat_at=now, attempts=Job.attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
    if not claimed:
        raise InvalidInput(f"job {job_id} is not queued (state {get_job(store, job_id).state}).")
    job = get_job(store, job_id)
    context = JobContext(settings, store, job, me, runtime)
    if on_progress is not None:
        plain = context.progress

        def progress(done: int, total: int | None, message: str | None = None) -> None:
            plain(done, total, message)
            on_progress(done, total, message)

        context.progress = progress  # type: ignore[method-assign]
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
