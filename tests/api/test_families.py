"""GET /api/families, /api/families/{label} and /api/families/points on a private copy of the tiny atlas,
before and after a `pattern_families` job (queued through POST /api/jobs, run here; slow: UMAP). Every
number the endpoints serve is recomputed here from the database rows."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from attnlens.analysis.stats import wilson_interval
from attnlens.atlas.handlers import JOB_HANDLERS
from attnlens.contracts.head_scores import HEAD_SCORES, HEAD_SCORES_VERSION, SCORE_NAMES
from attnlens.contracts.jobs import ATLAS_MAP, PATTERN_FAMILIES
from attnlens.contracts.tasks import CONTROL_TASKS
from attnlens.service.jobs import run_job_here
from attnlens.store.jobs import enqueue_job
from attnlens.store.models import FamilyAssignment, FamilyRun, HeadPattern, Inference, Scenario

# The tiny atlas has 12 completions x 16 heads = 192 patterns: small neighbourhoods, a fit sample that
# leaves 72 patterns to the kNN vote.
FAMILY_ANALYSIS = {
    "family_fit_sample": 120, "family_min_cluster_size": 8, "hdbscan_min_samples": 3, "umap_neighbors": 8,
    "umap_components": 4, "knn_k": 5, "family_examples": 4, "map_neighbors": 5,
}  # fmt: skip
N_PATTERNS = 12 * 16


def error_of(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"ok", "status", "code", "error", "errors"} and body["ok"] is False
    return body


def test_before_any_run_the_list_says_why_and_the_rest_is_404(private_atlas_client):
    client = private_atlas_client
    answer = client.get("/api/families")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["families"] == [] and body["run"] is None and body["job"] is None
    assert "attnlens families" in body["reason"] and body["model"] == "tiny-starcoder2"
    assert "attnlens families" in error_of(client.get("/api/families/0"), 404)["error"]
    assert "tiny-starcoder2" in error_of(client.get("/api/families", params={"model": "nope"}), 404)["error"]
    assert "no map" in error_of(client.get("/api/families/points"), 404)["error"]


@pytest.fixture(scope="module")
def ran(private_atlas_client):
    """The job queued the way the Jobs page queues it, then run here with small-data settings; a map too."""
    client = private_atlas_client
    state = client.app.state
    settings = state.settings.model_copy(
        update={"analysis": state.settings.analysis.model_copy(update=FAMILY_ANALYSIS)}
    )
    queued = client.post("/api/jobs", json={"kind": PATTERN_FAMILIES})
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["id"]
    waiting = client.get("/api/families").json()
    assert waiting["job"]["id"] == job_id and waiting["job"]["state"] == "queued"
    done = run_job_here(settings, state.store, job_id, None, JOB_HANDLERS[PATTERN_FAMILIES])
    assert done.state == "succeeded", done.error
    mapped = run_job_here(
        settings, state.store, enqueue_job(state.store, ATLAS_MAP, {}), None, JOB_HANDLERS[ATLAS_MAP]
    )
    assert mapped.state == "succeeded", mapped.error
    listed = client.get("/api/families")
    assert listed.status_code == 200, listed.text
    return client, state.store, done, listed.json()


def _rows(store, run_id: int) -> dict[int, dict[str, Any]]:
    """Every assigned pattern of the run with what the endpoints summarise, from the database."""
    columns = [getattr(HeadPattern, name) for name in SCORE_NAMES]
    with store.session() as session:
        rows = session.execute(
            select(FamilyAssignment.head_pattern_id, FamilyAssignment.label, FamilyAssignment.vote_share,
                   HeadPattern.layer, HeadPattern.head, HeadPattern.inference_id, Scenario.task,
                   Inference.first_token_correct, Inference.head_scores_version, *columns)
            .join(HeadPattern, HeadPattern.id == FamilyAssignment.head_pattern_id)
            .join(Inference, Inference.id == HeadPattern.inference_id)
            .join(Scenario, Scenario.id == Inference.scenario_id)
            .where(FamilyAssignment.family_run_id == run_id)
        ).all()  # fmt: skip
    keys = ["label", "vote_share", "layer", "head", "inference", "task", "correct", "version", *SCORE_NAMES]
    return {int(r[0]): dict(zip(keys, r[1:], strict=True)) for r in rows}


def _rate(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """(right, counted) over the distinct completions of `rows` with a ground truth, control tasks out."""
    per_completion = {r["inference"]: r["correct"] for r in rows if r["task"] not in CONTROL_TASKS}
    counted = [c for c in per_completion.values() if c is not None]
    return sum(bool(c) for c in counted), len(counted)


@pytest.mark.slow
def test_every_pattern_is_assigned_once_and_sizes_add_up(ran):
    _client, store, job, body = ran
    run = body["run"]
    assert job.result["family_run_id"] == run["id"] and run["job_id"] == job.id
    assert job.result["families"] == run["n_families"] == len(body["families"])
    assert run["n_families"] >= 2, "the tiny atlas should hold a few families with these settings"
    rows = _rows(store, run["id"])
    with store.session() as session:
        mined = set(
            session.scalars(select(HeadPattern.id).join(Inference).where(Inference.source == "mined"))
        )
        assert session.scalar(select(FamilyRun.parameters).where(FamilyRun.id == run["id"]))["complete"]
    assert set(rows) == mined and len(rows) == run["n_patterns"] == N_PATTERNS  # each once (primary key)
    labels = Counter(r["label"] for r in rows.values())
    assert sum(f["size"] for f in body["families"]) == sum(c for label, c in labels.items() if label >= 0)
    assert run["n_noise"] == labels.get(-1, 0) and set(labels) <= {-1, *range(run["n_families"])}
    assert [f["label"] for f in body["families"]] == list(range(run["n_families"]))
    sizes = [f["size"] for f in body["families"]]
    assert sizes == sorted(sizes, reverse=True)  # family 0 is the largest
    for family in body["families"]:
        assert family["size"] == labels[family["label"]]
        assert family["share"] == pytest.approx(family["size"] / N_PATTERNS)
    fitted = [r for r in rows.values() if r["vote_share"] is None]
    assert (
        len(fitted)
        == run["n_fitted"]
        == 120
        == sum(f["n_fitted"] for f in body["families"]) + sum(1 for r in fitted if r["label"] < 0)
    )
    assert all(0 < r["vote_share"] <= 1 for r in rows.values() if r["vote_share"] is not None)


@pytest.mark.slow
def test_where_it_occurs_and_examples_match_the_rows(ran):
    _client, store, _job, body = ran
    rows = _rows(store, body["run"]["id"])
    for family in body["families"]:
        members = {pid: r for pid, r in rows.items() if r["label"] == family["label"]}
        layers = Counter(r["layer"] for r in members.values())
        assert family["layers"] == [{"layer": k, "count": layers[k]} for k in sorted(layers)]
        heads = Counter(f"L{r['layer']}H{r['head']}" for r in members.values())
        assert family["n_heads"] == len(heads)
        assert all(heads[h["name"]] == h["count"] for h in family["heads"])
        assert [h["count"] for h in family["heads"]] == sorted(heads.values(), reverse=True)[
            : len(family["heads"])
        ]
        assert family["tasks"] == dict(Counter(r["task"] for r in members.values()))
        assert family["n_inferences"] == len({r["inference"] for r in members.values()})
        assert family["example_ids"][0] == family["medoid_pattern_id"]
        assert len(family["example_ids"]) == min(4, family["size"]) == len(set(family["example_ids"]))
        assert set(family["example_ids"]) <= set(members)
        shown = family["examples"]
        assert [e["id"] for e in shown] == family["example_ids"][:3]
        assert all(e["thumbnail"] and e["thumbnail_size"] > 0 for e in shown)


@pytest.mark.slow
def test_labels_and_correctness_are_recomputed_from_the_rows(ran):
    _client, store, _job, body = ran
    rows = _rows(store, body["run"]["id"])
    right, counted = _rate(list(rows.values()))
    atlas = body["atlas_correctness"]
    interval = wilson_interval(right, counted)
    assert (atlas["successes"], atlas["trials"]) == (right, counted)
    assert (atlas["rate"], atlas["low"], atlas["high"]) == pytest.approx(
        (interval.estimate, interval.low, interval.high)
    )
    assert body["correctness_leaves_out_tasks"] == sorted(CONTROL_TASKS)
    thresholds = {s.name: s for s in HEAD_SCORES}
    for family in body["families"]:
        members = [r for r in rows.values() if r["label"] == family["label"]]
        right, counted = _rate(members)
        if counted == 0:
            assert family["correctness"] is None and family["differs_from_atlas"] is None
        else:
            rate = family["correctness"]
            interval = wilson_interval(right, counted)
            assert (rate["successes"], rate["trials"]) == (right, counted)
            assert (rate["low"], rate["high"]) == pytest.approx((interval.low, interval.high))
            assert family["differs_from_atlas"] == (not interval.low <= atlas["rate"] <= interval.high)
        scored = [r for r in members if r["version"] == HEAD_SCORES_VERSION]
        assert family["n_scored"] == len(scored)
        expected_labels = []
        for score in family["scores"]:
            values = [r[score["name"]] for r in scored if r[score["name"]] is not None]
            assert score["n_applicable"] == len(values)
            if values:
                assert score["median"] == pytest.approx(float(np.median(values)))
                labelled = float(np.median(values)) >= thresholds[score["name"]].threshold
                assert score["labelled"] == labelled
                if labelled:
                    expected_labels.append(score["name"])
            else:
                assert score["median"] is None and not score["labelled"]
        assert sorted(label["score"] for label in family["labels"]) == sorted(expected_labels)
        for label in family["labels"]:
            assert (
                label["label"] == thresholds[label["score"]].label and label["median"] >= label["threshold"]
            )


@pytest.mark.slow
def test_one_family_in_full_and_the_errors(ran):
    client, _store, _job, body = ran
    first = body["families"][0]
    answer = client.get("/api/families/0")
    assert answer.status_code == 200, answer.text
    detail = answer.json()
    assert detail["run"] == body["run"] and detail["atlas_correctness"] == body["atlas_correctness"]
    assert {k: v for k, v in detail["family"].items() if k != "examples"} == {
        k: v for k, v in first.items() if k != "examples"
    }
    assert [e["id"] for e in detail["family"]["examples"]] == first["example_ids"]  # every example
    n = body["run"]["n_families"]
    assert f"0-{n - 1}" in error_of(client.get(f"/api/families/{n}"), 404)["error"]
    assert error_of(client.get("/api/families/-1"), 422)["code"] == "invalid_request"
    assert error_of(client.get("/api/families/0", params={"model": "nope"}), 404)["code"] == "not_found"
    assert client.get("/api/families", params={"thumbnails": 0}).json()["families"][0]["examples"] == []


@pytest.mark.slow
def test_map_points_carry_their_family(ran):
    client, store, _job, body = ran
    rows = _rows(store, body["run"]["id"])
    for max_points in (200_000, 50):
        points = client.get("/api/families/points", params={"max_points": max_points}).json()
        shown = client.get("/api/maps/latest", params={"max_points": max_points}).json()
        assert points["ids"] == shown["points"]["id"] and points["shown"] == len(points["ids"])
        assert points["run_id"] == body["run"]["id"] and points["reason"] is None
        assert points["family"] == [rows[i]["label"] for i in points["ids"]]
    assert len(points["ids"]) < N_PATTERNS  # the sample, as the map samples


@pytest.mark.slow
def test_the_cli_prints_the_newest_run(ran):
    from attnlens.cli import app
    from tests.api.test_job_requests import invoke

    client, _store, _job, body = ran
    done = invoke(
        app,
        "--data-dir",
        str(client.app.state.settings.data_dir),
        "families",
        "--no-run",
        "--model",
        "tiny-starcoder2",
    )
    assert done.exit_code == 0, (done.output, done.exception)
    lines = done.output.splitlines()
    assert lines[0].startswith(f"run {body['run']['id']} of tiny-starcoder2: {N_PATTERNS} patterns")
    families = [line.split() for line in lines if line.strip() and line.split()[0].isdigit()]
    assert [(int(f[0]), int(f[1])) for f in families] == [(f["label"], f["size"]) for f in body["families"]]
    atlas = next(line for line in lines if line.strip().startswith("atlas"))
    rate = body["atlas_correctness"]
    assert f"{rate['rate']:.3f} [{rate['low']:.3f}, {rate['high']:.3f}] of {rate['trials']}" in atlas


@pytest.mark.slow
def test_a_job_cancelled_while_writing_leaves_no_run_behind(ran):
    from attnlens.store.jobs import request_cancel

    client, store, _job, body = ran
    settings = client.app.state.settings.model_copy(
        update={"analysis": client.app.state.settings.analysis.model_copy(update=FAMILY_ANALYSIS)}
    )
    job_id = enqueue_job(store, PATTERN_FAMILIES, {})

    def cancel_after_the_fit(done: int, total: int | None, message: str | None) -> None:
        if message and message.startswith(f"placed {N_PATTERNS} of"):
            request_cancel(store, job_id)

    cancelled = run_job_here(
        settings, store, job_id, None, JOB_HANDLERS[PATTERN_FAMILIES], cancel_after_the_fit
    )
    assert cancelled.state == "cancelled" and cancelled.result == {"complete": False, "patterns": N_PATTERNS}
    with store.session() as session:
        assert session.scalars(select(FamilyRun.id)).all() == [body["run"]["id"]]
        assert {r for (r,) in session.execute(select(FamilyAssignment.family_run_id).distinct())} == {
            body["run"]["id"]
        }
    assert client.get("/api/families").json()["run"] == body["run"]
