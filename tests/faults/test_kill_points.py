"""Kill -9 at chosen points, then run the same command again: nothing lost, nothing duplicated, the index
consistent with the database, and the job resumed (attempts == 2) to the result an uninterrupted run gives.

Each command runs as users run it (the `attnlens` CLI in a subprocess) with one function made to SIGKILL the
process at a named call (tests/faults/kill_at.py):

| point                                   | function (as its caller looks it up)                  |
|-----------------------------------------|--------------------------------------------------------|
| build: inside an inference's transaction | attnlens.store.patterns:save_head_patterns, 3rd, after |
| build: before an index save             | attnlens.index.space_index:write_index_atomically, 1st |
| clustering: after the 3rd head's commit  | attnlens.atlas.clustering:save_head_clustering         |
| predictor training: after the 1st save   | attnlens.atlas.train_predictors:save_predictor         |
| experiment: after the 2nd ablated point  | attnlens.atlas.experiments:first_token_correct         |

(A crash in the middle of writing an index file is tests/index/test_pattern_index.py's
`test_a_crash_during_save_leaves_the_old_index_readable`.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from attnlens.analysis import predictor_kinds
from attnlens.config import Settings
from attnlens.index import PatternIndex
from attnlens.store import open_store
from attnlens.store.models import ClusterAssignment, Clustering, HeadPattern, Inference, Job, Predictor
from tests.atlas.test_build import _snapshot
from tests.conftest import JAVA_FIXTURES, REPO, TINY_TASKS, copy_atlas, tiny_settings
from tests.store.signal_atlas import build_predicted_atlas

pytestmark = pytest.mark.slow
TASK = "identifiers"  # the predicted atlas's task (tests/store/signal_atlas.py)
GROUPS = ("model", "apmae", "atlas", "mining", "analysis")


def env_of(settings: Settings) -> dict[str, str]:
    """The settings a subprocess needs, as the environment (a nested group takes JSON)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for group in GROUPS:
        env[f"ATTNLENS_{group.upper()}"] = getattr(settings, group).model_dump_json()
    return env


def run_cli(settings: Settings, args: list[str], kill_at: tuple[str, int, str] | None = None) -> str:
    """`attnlens --data-dir ... ARGS` in a subprocess; with `kill_at`, it must die there by SIGKILL."""
    base = ["--data-dir", str(settings.data_dir), *args]
    if kill_at is None:
        command = [sys.executable, "-m", "worker", *base]  # `python -m worker` is `attnlens`
    else:
        target, call, when = kill_at
        command = [sys.executable, "-m", "tests.faults.kill_at", target, str(call), when, "--", *base]
    done = subprocess.run(
        command, env=env_of(settings), capture_output=True, text=True, timeout=900, cwd=REPO
    )
    if kill_at is not None:
        assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr[-3000:])
    else:
        assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def result_of(stdout: str) -> dict[str, Any]:
    """The JSON object a command prints first (some print a table after it)."""
    result: dict[str, Any] = json.JSONDecoder().raw_decode(stdout[stdout.index("{") :])[0]
    return result


def jobs_of(settings: Settings, kind: str) -> list[Job]:
    with open_store(settings).session() as s:
        return list(s.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))


def assert_index_matches_database(settings: Settings) -> None:
    store = open_store(settings)
    report = PatternIndex.open(settings, store).check(store)
    assert report.ok, report.summary()


# -- the build ---------------------------------------------------------------------------------------------
BUILD = ["atlas", "build", "--corpus", str(JAVA_FIXTURES), "--model", "tiny-starcoder2", "--per-task", "3",
         "--tasks", ",".join(TINY_TASKS), "--batch-size", "1"]  # fmt: skip


@pytest.mark.parametrize(
    "kill_at",
    [
        ("attnlens.store.patterns:save_head_patterns", 3, "after"),  # rows added, transaction not committed
        ("attnlens.index.space_index:write_index_atomically", 1, "before"),  # committed, index not saved
    ],
    ids=["inside-an-inference-transaction", "before-an-index-save"],
)
def test_build_killed_at_a_chosen_point_resumes_to_the_same_atlas(
    tmp_path, tiny_apmae_folder, tiny_atlas, kill_at
):
    _, reference_store, reference = tiny_atlas
    settings = tiny_settings(tmp_path / "data", tiny_apmae_folder)
    run_cli(settings, [*BUILD, "--checkpoint", str(tiny_apmae_folder)], kill_at=kill_at)
    store = open_store(settings)
    with store.session() as s:
        after_kill = s.scalar(select(func.count()).select_from(Inference)) or 0
        patterns = s.scalar(select(func.count()).select_from(HeadPattern)) or 0
    assert patterns == after_kill * 16  # whole inferences only: the killed transaction left nothing
    if "save_head_patterns" in kill_at[0]:
        assert after_kill < reference.processed
    else:  # the build's first index save is its last step: every row committed, the index behind them
        assert after_kill == reference.processed
        assert not PatternIndex.open(settings, store).check(store).ok

    result = result_of(run_cli(settings, [*BUILD, "--checkpoint", str(tiny_apmae_folder)]))
    assert result["state"] == "succeeded" and result["already_done"] == after_kill
    assert _snapshot(store) == _snapshot(reference_store)  # same scenarios, completions, heads, embeddings
    (job,) = jobs_of(settings, "atlas_build")
    assert job.state == "succeeded" and job.attempts == 2
    assert_index_matches_database(settings)


# -- analysis jobs on a predicted atlas --------------------------------------------------------------------
@pytest.fixture(scope="module")
def predicted(tiny_atlas, tmp_path_factory) -> Settings:
    """A predicted atlas (clustered, both predictor kinds trained); each test works on its own copy."""
    settings, _ = build_predicted_atlas(tiny_atlas[0], tmp_path_factory.mktemp("predicted") / "data")
    return settings


@pytest.fixture
def atlas_copy(predicted, tmp_path) -> Settings:
    copy_atlas(predicted.data_dir, tmp_path / "data")
    return predicted.model_copy(update={"data_dir": tmp_path / "data"})


def test_clustering_killed_after_a_head_resumes_without_duplicates(atlas_copy):
    settings = atlas_copy
    store = open_store(settings)
    with store.session() as s:
        (first,) = s.scalars(select(Clustering)).all()
        reference = dict(
            s.execute(select(ClusterAssignment.head_pattern_id, ClusterAssignment.label)
                      .where(ClusterAssignment.clustering_id == first.id)).all()
        )  # fmt: skip
    run_cli(
        settings, ["atlas", "cluster"], kill_at=("attnlens.atlas.clustering:save_head_clustering", 3, "after")
    )
    with store.session() as s:
        partial = s.scalars(select(Clustering).where(Clustering.id != first.id)).one()
        assert not partial.parameters.get("complete")  # readers skip it: the first clustering stays in use
    result = result_of(run_cli(settings, ["atlas", "cluster"]))
    assert result["state"] == "succeeded"
    with store.session() as s:
        second = s.scalars(select(Clustering).where(Clustering.id != first.id)).one()  # resumed, not a third
        assigned = s.execute(
            select(ClusterAssignment.head_pattern_id, ClusterAssignment.label).where(
                ClusterAssignment.clustering_id == second.id
            )
        ).all()
    assert second.parameters.get("complete") is True
    ids = [pattern_id for pattern_id, _ in assigned]
    assert len(ids) == len(set(ids)) == len(reference)  # every pattern once
    assert dict(assigned) == reference  # the same labels an uninterrupted run gave (seeded per head)
    (job,) = jobs_of(settings, "atlas_cluster")[-1:]
    assert job.state == "succeeded" and job.attempts == 2


def test_predictor_training_killed_after_a_save_resumes_without_duplicates(atlas_copy):
    settings = atlas_copy
    args = ["predictors", "train", "--tasks", TASK]
    run_cli(settings, args, kill_at=("attnlens.atlas.train_predictors:save_predictor", 1, "after"))
    result = result_of(run_cli(settings, args))
    assert result["state"] == "succeeded"
    job = jobs_of(settings, "train_predictors")[-1]
    assert job.attempts == 2
    with open_store(settings).session() as s:
        mine = s.scalars(select(Predictor).where(Predictor.job_id == job.id)).all()
    per_kind = Counter((p.task, p.kind) for p in mine)
    assert per_kind == {(TASK, kind): 1 for kind in predictor_kinds()}, per_kind
    assert sorted(t["predictor_id"] for t in result["trained"]) == sorted(p.id for p in mine)


def test_experiment_killed_mid_dose_curve_resumes_to_the_same_result(atlas_copy, tmp_path):
    settings = atlas_copy
    args = ["experiments", "run", "--task", TASK, "--corpus", str(JAVA_FIXTURES),
            "--rules", "random,top_positive", "--n", "1,4", "--scenarios", "3", "--out"]  # fmt: skip
    killed = tmp_path / "killed.json"
    run_cli(
        settings, [*args, str(killed)], kill_at=("attnlens.atlas.experiments:first_token_correct", 2, "after")
    )
    assert not killed.exists()
    run_cli(settings, [*args, str(killed)])
    resumed = json.loads(killed.read_text())
    assert resumed["state"] == "succeeded"
    job = jobs_of(settings, "ablation_experiment")[-1]
    assert job.id == resumed["job"] and job.attempts == 2
    points = [(row["rule"], row["n"]) for row in resumed["rows"]]
    assert sorted(points) == sorted({(r, n) for r in ("random", "top_positive") for n in (1, 4)})
    # an uninterrupted run of the same request (a new job: the old one is finished) gives the same rows
    run_cli(settings, [*args, str(tmp_path / "fresh.json")])
    fresh = json.loads((tmp_path / "fresh.json").read_text())
    assert fresh["job"] != resumed["job"] and fresh["rows"] == resumed["rows"]
