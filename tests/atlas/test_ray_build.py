"""The Ray engine for real: a local Ray limited to this machine's two CPUs, the tiny StarCoder2 in Ray
actors, the session's throwaway PostgreSQL as the shared store, and an actor's process killed with SIGKILL
half-way. The result must be the local build's atlas: nothing lost, nothing stored twice, the index in step
with the database."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from attnlens.apmae.load import embedder_label
from attnlens.atlas.build import BuildRequest
from attnlens.atlas.build_job import run_atlas_build
from attnlens.atlas.ray_build import RayPlan, run_ray_build
from attnlens.atlas.ray_workers import mine_tasks, task_groups
from attnlens.contracts.job_parameters import build_parameters, engine_parameters
from attnlens.contracts.jobs import ATLAS_BUILD
from attnlens.errors import InvalidInput
from attnlens.index import PatternIndex
from attnlens.mining import MiningStats
from attnlens.service.jobs import run_job_here
from attnlens.store import open_store
from attnlens.store.codecs import unpack_embeddings
from attnlens.store.jobs import enqueue_job, get_job, request_cancel
from attnlens.store.models import HeadPattern, Inference
from tests.atlas.test_build import _snapshot
from tests.conftest import JAVA_FIXTURES, TINY_TASKS, tiny_settings

pytestmark = pytest.mark.slow
HEADS = 16  # the tiny StarCoder2: 2 layers x 8 heads


@pytest.fixture(scope="module")
def local_ray():
    """One Ray instance for the module, on two CPUs of this machine (the build joins it, as it would join
    a cluster with `--address auto`)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _ray_settings(pg_settings, apmae_folder: Path):
    """The tiny atlas's settings on the fresh PostgreSQL database."""
    merged = tiny_settings(pg_settings.data_dir, apmae_folder).model_dump()
    merged["db"] = pg_settings.db.model_dump()
    return type(pg_settings).model_validate(merged)


def _actor_pids() -> set[int]:
    """The processes of the build's Ray actors (Ray titles them `ray::BuildActor`)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::BuildActor"):
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def _actors_gone(within_s: float = 20.0) -> bool:
    """True once no actor process is left: `ray.kill` ends them, but not within the call."""
    deadline = time.monotonic() + within_s
    while _actor_pids():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _parameters(**engine) -> dict:
    parameters = build_parameters(str(JAVA_FIXTURES), list(TINY_TASKS), 3, 0, 1)
    return parameters | engine_parameters("ray", **engine)


def test_killed_actor_loses_nothing_and_the_atlas_equals_the_local_build(
    local_ray, pg_settings, tiny_apmae_folder, tiny_atlas
):
    _, reference_store, reference = tiny_atlas
    settings = _ray_settings(pg_settings, tiny_apmae_folder)
    store = open_store(settings)
    assert store.engine.dialect.name == "postgresql"
    job_id = enqueue_job(store, ATLAS_BUILD, _parameters(actors=2))
    killed: list[int] = []
    progress_seen: list[tuple[int, int | None]] = []

    def on_progress(done: int, total: int | None, message: str | None) -> None:
        progress_seen.append((done, total))
        row = get_job(store, job_id)  # what the app's Jobs page reads, while the build runs
        assert (row.state, row.progress_done, row.progress_total) == ("running", done, total)
        if done >= 3 and not killed:
            pids = sorted(_actor_pids())
            assert len(pids) == 2, pids
            os.kill(pids[0], signal.SIGKILL)  # as the OOM killer would; its batches are in flight
            killed.append(pids[0])
            with store.session() as s:
                assert s.scalar(select(func.count()).select_from(Inference)) < reference.processed

    job = run_job_here(settings, store, job_id, None, run_atlas_build, on_progress)

    assert job.state == "succeeded", job.error
    assert killed and progress_seen[-1] == (reference.processed, reference.processed)
    result = job.result
    assert result["processed"] == reference.processed and result["failed"] == 0
    assert result["head_patterns"] == reference.processed * HEADS
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Inference)) == reference.processed
        assert s.scalar(select(func.count()).select_from(HeadPattern)) == reference.processed * HEADS
        per_scenario = s.execute(
            select(Inference.scenario_id, func.count()).group_by(Inference.scenario_id)
        ).all()
    assert {count for _, count in per_scenario} == {1}
    # The local build's atlas: same scenarios, completions, correctness and heads; embeddings equal up to
    # float noise (batches of one here, of three there).
    mine, theirs = _snapshot(store), _snapshot(reference_store)
    assert [row[:7] for row in mine] == [row[:7] for row in theirs]
    np.testing.assert_allclose(
        unpack_embeddings([row[7] for row in mine]), unpack_embeddings([row[7] for row in theirs]), atol=1e-5
    )
    assert result["index"]["vectors"] == reference.processed * HEADS
    report = PatternIndex.open(settings, store).check(store)
    assert report.ok, report.summary()
    assert _actors_gone()  # the build lets its actors go


def test_cancel_stops_the_build_and_a_rerun_finishes_it(
    local_ray, pg_settings, tiny_apmae_folder, tiny_atlas
):
    _, _, reference = tiny_atlas
    settings = _ray_settings(pg_settings, tiny_apmae_folder)
    store = open_store(settings)
    job_id = enqueue_job(store, ATLAS_BUILD, _parameters(actors=1))

    def on_progress(done: int, total: int | None, message: str | None) -> None:
        if done >= 2:
            request_cancel(store, job_id)  # the Jobs page's Cancel button

    job = run_job_here(settings, store, job_id, None, run_atlas_build, on_progress)
    assert job.state == "cancelled"
    with store.session() as s:
        stored = s.scalar(select(func.count()).select_from(Inference))
        patterns = s.scalar(select(func.count()).select_from(HeadPattern))
    assert 2 <= stored < reference.processed and patterns == stored * HEADS  # whole inferences only
    assert _actors_gone()

    request = BuildRequest(corpus=str(JAVA_FIXTURES), tasks=TINY_TASKS, per_task=3, batch_size=2)
    embedder = embedder_label(tiny_apmae_folder)
    report = run_ray_build(settings, store, request, RayPlan(actors=1), embedder=embedder)
    assert (report.already_done, report.processed) == (stored, reference.processed - stored)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(HeadPattern)) == reference.processed * HEADS


def test_a_cancel_reaches_a_build_still_mining_or_loading(local_ray, pg_settings, tiny_apmae_folder):
    """Mining a large corpus or loading a large model takes minutes: the job row says which, and a cancel
    asked meanwhile ends the build before its first batch."""
    settings = _ray_settings(pg_settings, tiny_apmae_folder)
    store = open_store(settings)
    job_id = enqueue_job(store, ATLAS_BUILD, _parameters(actors=1))
    messages: list[str | None] = []

    def on_progress(done: int, total: int | None, message: str | None) -> None:
        messages.append(message)
        request_cancel(store, job_id)

    job = run_job_here(settings, store, job_id, None, run_atlas_build, on_progress)
    assert job.state == "cancelled" and job.result["processed"] == 0
    assert messages[0].startswith("mining 4 tasks in up to")
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Inference)) == 0
    assert _actors_gone()


def test_a_cluster_refuses_a_sqlite_store_before_it_starts(settings):
    store = open_store(settings)
    request = BuildRequest(corpus=str(JAVA_FIXTURES), tasks=TINY_TASKS, per_task=1)
    with pytest.raises(InvalidInput, match="SQLite is a file on one machine"):
        run_ray_build(settings, store, request, RayPlan(address="ray://10.0.0.1:10001"), embedder="default")


@pytest.mark.parametrize(
    ("engine", "options", "message"),
    [
        ("spark", {}, "unknown engine 'spark'"),
        ("local", {"actors": 2}, "need --engine ray"),
        ("ray", {"actors": 0}, "actors must be a whole number 1 or more"),
        ("ray", {"cpus_per_actor": 0.0}, "cpus_per_actor must be more than 0"),
        ("ray", {"gpus_per_actor": -1.0}, "gpus_per_actor must be 0 or more"),
    ],
)
def test_engine_parameters_refuse_what_cannot_run(engine, options, message):
    with pytest.raises(InvalidInput, match=message):
        engine_parameters(engine, **options)


def test_a_local_build_keeps_its_parameters():
    """Resume matches a queued job by its parameters: the local engine must add none."""
    assert engine_parameters("local") == {}
    assert _parameters(actors=2)["engine"] == "ray"


def test_tasks_mined_in_groups_give_the_scenarios_and_counts_of_one_run(tiny_apmae_folder, tmp_path):
    """What makes the Ray build's mining the local build's: a task's scenarios do not depend on which other
    tasks are mined beside it."""
    settings = tiny_settings(tmp_path / "data", tiny_apmae_folder)
    tasks = list(TINY_TASKS)
    request = BuildRequest(corpus=str(JAVA_FIXTURES), tasks=tasks, per_task=3)
    whole, whole_stats, _ = mine_tasks(settings, request, tasks)
    groups = task_groups(tasks, 3)
    assert sorted(t for g in groups for t in g) == sorted(tasks) and len(groups) == 3
    runs = [(group, *mine_tasks(settings, request, group)[:2]) for group in groups]
    apart = [scenario for _, found, _ in runs for scenario in found]
    assert sorted(apart, key=repr) == sorted(whole, key=repr) and len(whole) == 3 * len(tasks)
    merged = MiningStats.of_task_groups([(group, stats) for group, _, stats in runs])
    for name in ("files_read", "files_mined", "scenarios", "target_tokens", "rejected"):
        assert getattr(merged, name) == getattr(whole_stats, name), name
    # One run counts every task's candidates over all the files it read; a group stops reading once its
    # own tasks are full, so its counts cover fewer files (the merge's docstring says so).
    assert all(merged.candidates[t] <= whole_stats.candidates[t] for t in tasks)
    assert merged.candidates != whole_stats.candidates
    assert task_groups(tasks, 1) == [tasks] and task_groups(tasks, 99) == [[t] for t in tasks]
