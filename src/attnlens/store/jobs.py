"""The job queue: long tasks recorded in the `job` table, claimed and reported on by worker processes.

Life of a job: `queued` -> (claimed) `running` -> `succeeded` | `failed` | `cancelled`.
Every state change is one conditional UPDATE ("... WHERE state = 'queued'", "... WHERE worker = me"),
so two workers can never both win: on SQLite the statement takes the database write lock, on PostgreSQL
the row lock (and the claim's sub-select skips rows another worker has locked). Each helper runs in its
own short transaction and commits at once, so progress is visible to readers while the job runs.

A worker that dies stops sending heartbeats; `requeue_stale_jobs` puts its jobs back in the queue, and
the dead worker, should it wake up, gets `JobNotHeld` on its next report.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select, update

from attnlens.errors import InvalidInput, JobNotHeld, NotFound
from attnlens.store.base import utc_now
from attnlens.store.engine import Store
from attnlens.store.models import Job

FINISHED_STATES = ("succeeded", "failed", "cancelled")


def enqueue_job(
    store: Store, kind: str, parameters: dict[str, Any] | None = None, *, total: int | None = None
) -> int:
    """Add a queued job; returns its id."""
    with store.session() as session:
        job = Job(kind=kind, parameters=parameters or {}, progress_total=total)
        session.add(job)
        session.flush()
        return job.id


def get_job(store: Store, job_id: int) -> Job:
    """The job as it is now (a detached copy); `NotFound` if there is none."""
    with store.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound(f"there is no job {job_id}; list jobs to see which exist.")
        return job


def claim_job(
    store: Store, worker: str, kinds: list[str] | None = None, *, skip_engines: Sequence[str] = ()
) -> Job | None:
    """Take the oldest queued job (of one of `kinds`, if given) for `worker`; None when there is none.
    Jobs whose `engine` parameter is in `skip_engines` are left for their own driver (a Ray build runs in
    the `attnlens atlas build --engine ray` that queued it, which sits in the cluster; a server's runner
    may be nowhere near it)."""
    waiting = select(Job.id).where(Job.state == "queued", Job.cancel_requested.is_(False))
    if kinds is not None:
        waiting = waiting.where(Job.kind.in_(kinds))
    if skip_engines:
        engine = func.coalesce(Job.parameters["engine"].as_string(), "local")
        waiting = waiting.where(engine.not_in(list(skip_engines)))
    candidate = waiting.order_by(Job.id).limit(1).with_for_update(skip_locked=True)
    for _ in range(10):
        now = utc_now()
        with store.session() as session:
            claimed = session.scalar(
                update(Job)
                .where(Job.id == candidate.scalar_subquery(), Job.state == "queued")
                .values(
                    state="running",
                    worker=worker,
                    started_at=now,
                    heartbeat_at=now,
                    attempts=Job.attempts + 1,
                )
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
        if claimed is not None:
            return get_job(store, claimed)
        # Nothing claimed: either the queue is empty, or (PostgreSQL) another worker took our candidate
        # between the sub-select and the update; only the second is worth another try.
        with store.session() as session:
            if not session.scalar(select(waiting.exists())):
                return None
    return None


def _update_held(store: Store, job_id: int, worker: str, **values: Any) -> Job:
    """Apply `values` to a running job held by `worker`, or raise `JobNotHeld`."""
    with store.session() as session:
        changed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker == worker, Job.state == "running")
            .values(**values)
            .returning(Job.cancel_requested)
            .execution_options(synchronize_session=False)
        ).first()
    if changed is None:
        raise JobNotHeld(
            f"job {job_id} is not running under worker {worker!r} any more (requeued after a missed "
            "heartbeat, or finished); stop working on it."
        )
    return get_job(store, job_id)


def heartbeat(store: Store, job_id: int, worker: str) -> bool:
    """Tell the queue `worker` is alive on the job; returns True if cancellation was requested."""
    return _update_held(store, job_id, worker, heartbeat_at=utc_now()).cancel_requested


def report_progress(
    store: Store, job_id: int, worker: str, *, done: int, total: int | None = None, message: str | None = None
) -> bool:
    """Record progress (`done` of `total` units) and a heartbeat.

    Returns True if cancellation was requested."""
    values: dict[str, Any] = {"progress_done": done, "heartbeat_at": utc_now()}
    if total is not None:
        values["progress_total"] = total
    if message is not None:
        values["message"] = message
    return _update_held(store, job_id, worker, **values).cancel_requested


def finish_job(store: Store, job_id: int, worker: str, result: dict[str, Any] | None = None) -> Job:
    """Mark the job succeeded, with its result."""
    now = utc_now()
    return _update_held(
        store, job_id, worker, state="succeeded", result=result, finished_at=now, heartbeat_at=now
    )


def fail_job(store: Store, job_id: int, worker: str, error: str) -> Job:
    """Mark the job failed; `error` says what went wrong (and, ideally, what to do)."""
    now = utc_now()
    return _update_held(store, job_id, worker, state="failed", error=error, finished_at=now, heartbeat_at=now)


def acknowledge_cancel(store: Store, job_id: int, worker: str, result: dict[str, Any] | None = None) -> Job:
    """The worker stopped because cancellation was requested; `result` may hold partial output."""
    now = utc_now()
    return _update_held(
        store, job_id, worker, state="cancelled", result=result, finished_at=now, heartbeat_at=now
    )


def request_cancel(store: Store, job_id: int) -> Job:
    """Cancel a queued job at once, or ask the worker of a running one to stop.

    A running job's worker sees the request on its next progress report."""
    now = utc_now()
    with store.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "queued")
            .values(state="cancelled", cancel_requested=True, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "running")
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False)
        )
    return get_job(store, job_id)


_CANCELLED_WHILE_DOWN = "cancelled: its process stopped after a cancel was asked for"


def _requeued(message: str) -> dict[str, Any]:
    """The values that put a dead worker's job back in the queue, unless a cancel had been asked for it: then
    it ends cancelled (a job resumed after its cancel would run to the end and still end cancelled)."""
    now = utc_now()
    cancelled = Job.cancel_requested.is_(True)
    return {
        "state": case((cancelled, "cancelled"), else_="queued"),
        "worker": None,
        "finished_at": case((cancelled, now), else_=None),
        "message": case((cancelled, _CANCELLED_WHILE_DOWN), else_=message),
    }


def requeue_stale_jobs(store: Store, stale_after_s: float) -> list[int]:
    """Put running jobs whose last heartbeat is older than `stale_after_s` back in the queue (or end them
    cancelled, if a cancel was asked for)."""
    cutoff = utc_now() - timedelta(seconds=stale_after_s)
    with store.session() as session:
        rows = session.execute(
            update(Job)
            .where(Job.state == "running", Job.heartbeat_at < cutoff)
            .values(**_requeued("requeued: its worker stopped sending heartbeats"))
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
        return sorted(row[0] for row in rows)


def list_jobs(store: Store, *, states: list[str] | None = None, limit: int = 100) -> list[Job]:
    """Newest jobs first."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if states is not None:
        query = query.where(Job.state.in_(states))
    with store.session() as session:
        return list(session.scalars(query))


@dataclass(frozen=True)
class PastRate:
    """How fast the recent finished jobs of one kind went: seconds per unit of their progress (median)."""

    seconds_per_unit: float
    jobs: int  # how many jobs the median is over


def past_rates(store: Store, per_kind: int = 5, scan: int = 200) -> dict[tuple[str, str | None], PastRate]:
    """Per job kind and pace group (`pace_group`: model and engine), the median seconds per progress
    unit of its `per_kind` newest succeeded jobs (among the newest `scan` succeeded ones): what an ETA can
    rest on before a job's own progress means much. Per model, because one model's build pace says nothing
    about another's (Gemma 3 270M and SmolLM2 differ by 4x in patterns per inference)."""
    with store.session() as session:
        rows = session.execute(
            select(Job.kind, Job.parameters, Job.started_at, Job.finished_at, Job.progress_total)
            .where(Job.state == "succeeded", Job.progress_total > 0, Job.started_at.is_not(None))
            .where(Job.finished_at.is_not(None))
            .order_by(Job.id.desc())
            .limit(scan)
        ).all()
    by_kind: dict[tuple[str, str | None], list[float]] = {}
    for kind, parameters, started, finished, total in rows:
        rates = by_kind.setdefault((kind, pace_group(parameters)), [])
        if len(rates) < per_kind and started is not None and finished is not None and total:
            rates.append((finished - started).total_seconds() / total)
    return {key: PastRate(float(statistics.median(r)), len(r)) for key, r in by_kind.items()}


def pace_group(parameters: object) -> str | None:
    """Which jobs of a kind share a pace: those of one model (its `model` parameter; none: the served one)
    on one engine (a Ray build's pace, start-up and actors included, says nothing of a local one's).
    None: the served model on the local engine."""
    if not isinstance(parameters, dict):
        return None
    model, engine = parameters.get("model"), parameters.get("engine")
    group = f"{model or ''}{f' on {engine}' if engine and engine != 'local' else ''}"
    return group or None


def running_jobs(store: Store) -> list[tuple[int, str | None]]:
    """(job id, worker) of every running job."""
    with store.session() as session:
        return [
            (int(i), w) for i, w in session.execute(select(Job.id, Job.worker).where(Job.state == "running"))
        ]


def requeue_job_of(store: Store, job_id: int, worker: str, message: str) -> bool:
    """Put a running job held by `worker` back in the queue (or end it cancelled, if a cancel was asked for);
    False when it is no longer so held."""
    with store.session() as session:
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "running", Job.worker == worker)
            .values(**_requeued(message))
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_queued_job(store: Store, job_id: int, worker: str) -> Job:
    """Claim one specific queued job for `worker` (the CLI runs the job it just queued); `InvalidInput`
    when it is not queued."""
    now = utc_now()
    with store.session() as session:
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "queued")
            .values(
                state="running", worker=worker, started_at=now, heartbeat_at=now, attempts=Job.attempts + 1
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    if not claimed:
        raise InvalidInput(f"job {job_id} is not queued (state {get_job(store, job_id).state}).")
    return get_job(store, job_id)


def has_job_of_kind(store: Store, kind: str) -> bool:
    """Whether any job of `kind` was ever queued."""
    with store.session() as session:
        return session.scalar(select(Job.id).where(Job.kind == kind).limit(1)) is not None
