"""The job queue: claims are exclusive (also across processes), progress and cancellation reach the worker,
stale jobs go back to the queue, and a worker that lost its job is told so."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest
from sqlalchemy import update

from attnlens.errors import JobNotHeld, NotFound
from attnlens.store import open_store
from attnlens.store.base import utc_now
from attnlens.store.engine import Store, make_engine
from attnlens.store.jobs import (
    acknowledge_cancel,
    claim_job,
    claim_queued_job,
    enqueue_job,
    fail_job,
    finish_job,
    get_job,
    heartbeat,
    list_jobs,
    report_progress,
    request_cancel,
    requeue_job_of,
    requeue_stale_jobs,
)
from attnlens.store.models import Job


def test_a_job_goes_from_queued_to_succeeded_with_progress(settings):
    store = open_store(settings)
    job_id = enqueue_job(store, "mine", {"per_task": 10}, total=100)
    job = claim_job(store, "w1")
    assert (job.id, job.kind, job.parameters, job.state, job.worker, job.attempts) == (
        job_id,
        "mine",
        {"per_task": 10},
        "running",
        "w1",
        1,
    )
    assert job.started_at is not None and job.heartbeat_at is not None
    assert report_progress(store, job_id, "w1", done=40, message="40 files") is False
    seen = get_job(store, job_id)
    assert (seen.progress_done, seen.progress_total, seen.message) == (40, 100, "40 files")
    finished = finish_job(store, job_id, "w1", {"scenarios": 7})
    assert (finished.state, finished.result) == ("succeeded", {"scenarios": 7})
    assert finished.finished_at >= finished.started_at
    assert claim_job(store, "w1") is None


def test_claims_take_the_oldest_job_of_the_wanted_kind(settings):
    store = open_store(settings)
    first = enqueue_job(store, "mine")
    second = enqueue_job(store, "cluster")
    third = enqueue_job(store, "mine")
    assert claim_job(store, "w", kinds=["cluster"]).id == second
    assert claim_job(store, "w").id == first
    assert claim_job(store, "w", kinds=["cluster"]) is None
    assert claim_job(store, "w", kinds=["mine"]).id == third


def check_runners_leave_driven_builds_alone(store: Store) -> None:
    """A Ray build is run by the command that queued it: a runner skipping `ray` never takes it (on
    SQLite and PostgreSQL alike: the test runs on both), while that command can claim it by id."""
    ray_build = enqueue_job(store, "atlas_build", {"corpus": "x", "engine": "ray"})
    local_build = enqueue_job(store, "atlas_build", {"corpus": "x"})
    explicit_local = enqueue_job(store, "atlas_build", {"corpus": "x", "engine": "local"})
    claimed = [claim_job(store, "runner", skip_engines=("ray",)) for _ in range(3)]
    assert [job.id if job else None for job in claimed] == [local_build, explicit_local, None]
    assert claim_queued_job(store, ray_build, "driver").worker == "driver"


def test_runners_leave_driven_builds_alone(settings):
    check_runners_leave_driven_builds_alone(open_store(settings))


def test_a_failed_job_keeps_its_error(settings):
    store = open_store(settings)
    job_id = enqueue_job(store, "mine")
    claim_job(store, "w")
    job = fail_job(store, job_id, "w", "corpus not found: install openjdk-17-source")
    assert (job.state, job.error) == ("failed", "corpus not found: install openjdk-17-source")
    with pytest.raises(JobNotHeld):
        report_progress(store, job_id, "w", done=1)


def test_cancelling_a_queued_job_is_immediate(settings):
    store = open_store(settings)
    job_id = enqueue_job(store, "mine")
    assert request_cancel(store, job_id).state == "cancelled"
    assert claim_job(store, "w") is None


def test_cancelling_a_running_job_reaches_its_worker(settings):
    store = open_store(settings)
    job_id = enqueue_job(store, "mine")
    claim_job(store, "w")
    assert heartbeat(store, job_id, "w") is False
    assert request_cancel(store, job_id).state == "running"
    assert report_progress(store, job_id, "w", done=3) is True
    job = acknowledge_cancel(store, job_id, "w", {"partial": 3})
    assert (job.state, job.result) == ("cancelled", {"partial": 3})


def test_stale_jobs_are_requeued_and_their_old_worker_is_told(settings):
    store = open_store(settings)
    job_id = enqueue_job(store, "atlas")
    claim_job(store, "dead-worker")
    assert requeue_stale_jobs(store, stale_after_s=60) == []
    with store.session() as session:
        session.execute(update(Job).values(heartbeat_at=utc_now() - timedelta(minutes=5)))
    assert requeue_stale_jobs(store, stale_after_s=60) == [job_id]
    job = claim_job(store, "new-worker")
    assert (job.id, job.worker, job.attempts) == (job_id, "new-worker", 2)
    with pytest.raises(JobNotHeld, match="dead-worker"):
        heartbeat(store, job_id, "dead-worker")
    assert heartbeat(store, job_id, "new-worker") is False


def test_a_dead_workers_job_with_a_cancel_asked_ends_cancelled_not_requeued(settings):
    """Found on a real atlas: a map job cancelled while its process was killed went back to the queue with
    its cancel flag, the next `attnlens atlas map` resumed it, placed all 675,000 points, and then ended
    cancelled without storing them."""
    store = open_store(settings)
    stale, orphan = enqueue_job(store, "atlas_map"), enqueue_job(store, "atlas_map")
    claim_job(store, "dead-worker")
    claim_job(store, "host:999999")
    request_cancel(store, stale)
    request_cancel(store, orphan)
    with store.session() as session:
        session.execute(
            update(Job).where(Job.id == stale).values(heartbeat_at=utc_now() - timedelta(minutes=5))
        )
    assert requeue_stale_jobs(store, stale_after_s=60) == [stale]
    assert requeue_job_of(store, orphan, "host:999999", "requeued: its process had stopped") is True
    for job_id in (stale, orphan):
        job = get_job(store, job_id)
        assert (job.state, job.worker) == ("cancelled", None) and job.finished_at is not None
        assert "cancel was asked for" in job.message
    assert claim_job(store, "new-worker") is None  # nothing to resume


def test_unknown_job_is_not_found(settings):
    store = open_store(settings)
    with pytest.raises(NotFound):
        get_job(store, 999)


def test_list_jobs_newest_first_and_by_state(settings):
    store = open_store(settings)
    ids = [enqueue_job(store, "mine") for _ in range(3)]
    claim_job(store, "w")
    assert [j.id for j in list_jobs(store)] == ids[::-1]
    assert [j.id for j in list_jobs(store, states=["running"])] == [ids[0]]


def _claim_all(url: str, worker: str, results) -> None:
    store = Store(make_engine(url))
    claimed = []
    while (job := claim_job(store, worker)) is not None:
        report_progress(store, job.id, worker, done=1)
        finish_job(store, job.id, worker)
        claimed.append(job.id)
    results.put((worker, claimed))


def test_several_processes_never_claim_the_same_job(settings):
    store = open_store(settings)
    ids = [enqueue_job(store, "mine") for _ in range(60)]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [
        context.Process(target=_claim_all, args=(settings.database_url, f"w{i}", results)) for i in range(4)
    ]
    for process in workers:
        process.start()
    claimed = [results.get(timeout=60) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    every_claim = [job_id for _, jobs in claimed for job_id in jobs]
    assert sorted(every_claim) == ids  # each job exactly once
    assert all(job.state == "succeeded" for job in list_jobs(store, limit=100))
