"""/api/findings: the findings report of a model, on a predicted atlas (tests/store/signal_atlas.py: a real
clustering and both predictor kinds trained by the real jobs). Before any report the API answers "not yet"
(200, findings null, a status saying how to make one); a report queued through the API and run by the real
job in-process (reconstruction off, 2 stability heads, after a real random-rule ablation experiment) is
served typed, with the same figures as the stored predictors and experiment, and as Markdown and HTML."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from attnlens.atlas.handlers import JOB_HANDLERS
from attnlens.contracts.findings import FINDINGS_REPORT, PAPER_CLAIMS
from attnlens.contracts.jobs import ABLATION_EXPERIMENT
from attnlens.service.jobs import run_job_here
from attnlens.store.analyses import jobs_of_kind, latest_clustering
from attnlens.store.jobs import claim_queued_job, enqueue_job, finish_job
from tests.conftest import JAVA_FIXTURES_CORPUS
from tests.store.signal_atlas import build_predicted_atlas

pytestmark = pytest.mark.slow

pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731 - findings_render.pct and dom.js pct(): one decimal
ci = lambda e: f"{pct(e['estimate'])} [{pct(e['low'])}, {pct(e['high'])}]"  # noqa: E731


@pytest.fixture(scope="module")
def atlas(tiny_atlas, tmp_path_factory):
    """(client, settings, store, worker) over a private predicted atlas; nothing reported yet."""
    from attnlens.api import create_app
    from attnlens.service.local import LocalWorker

    settings, store = build_predicted_atlas(tiny_atlas[0], tmp_path_factory.mktemp("findings") / "data")
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        yield client, settings, store, worker


@pytest.fixture(scope="module")
def reported(atlas) -> dict[str, Any]:
    """What the API answered before any report, while one was queued, and after the real jobs ran."""
    client, settings, store, worker = atlas
    seen: dict[str, Any] = {
        "before": client.get("/api/findings"),
        "before_md": client.get("/api/findings/report.md"),
        "before_html": client.get("/api/findings/report.html"),
    }
    experiment = client.post(
        "/api/experiments",
        json={"task": "identifiers", "rules": ["random"], "n": [1, 4, 16], "scenarios": 3,
              "corpus": JAVA_FIXTURES_CORPUS},
    )  # fmt: skip
    assert experiment.status_code == 202, experiment.json()
    done = run_job_here(settings, store, experiment.json()["id"], worker, JOB_HANDLERS[ABLATION_EXPERIMENT])
    assert done.state == "succeeded", done.error
    queued = client.post("/api/findings", json={"reconstruction": False, "stability_heads": 2})
    seen |= {"experiment": client.get(f"/api/jobs/{done.id}").json(), "queued": queued}
    seen["while_queued"] = client.get("/api/findings")
    job = run_job_here(settings, store, queued.json()["id"], None, JOB_HANDLERS[FINDINGS_REPORT])
    assert job.state == "succeeded", job.error
    seen |= {
        "job_id": job.id,
        "after": client.get("/api/findings"),
        "md": client.get("/api/findings/report.md"),
        "html": client.get("/api/findings/report.html"),
        "predictors": client.get("/api/predictors").json(),
    }
    return seen


def _error(response, status: int, code: str) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == status, body
    assert body["ok"] is False and body["status"] == status and body["code"] == code and body["error"], body
    return body


def test_before_any_report_the_answer_is_not_yet_and_downloads_are_missing(reported, atlas):
    settings = atlas[1]
    before = reported["before"]
    assert before.status_code == 200
    body = before.json()
    assert body["findings"] is None and body["job_id"] is None and body["finished_at"] is None
    assert body["model"] == settings.model.name and body["claims"] == PAPER_CLAIMS
    assert body["status"]["state"] == "none" and body["status"]["job"] is None
    assert (
        "attnlens report" in body["status"]["message"]
        and "Generate a new report" in body["status"]["message"]
    )
    # A download of nothing is an error, in the one error shape, saying how to make a report.
    for key in ("before_md", "before_html"):
        assert "attnlens report" in _error(reported[key], 404, "not_found")["error"]


def test_a_queued_report_is_a_job_and_the_status_says_so(reported, atlas):
    settings = atlas[1]
    queued = reported["queued"]
    assert queued.status_code == 202
    job = queued.json()
    assert job["kind"] == FINDINGS_REPORT and job["state"] == "queued"
    assert job["parameters"] == {
        "model": settings.model.name, "checkpoint": "default", "reconstruction": False, "stability_heads": 2,
        "experiment_id": None,
    }  # fmt: skip
    body = reported["while_queued"].json()
    assert body["findings"] is None
    status = body["status"]
    assert status["state"] == "queued" and status["job"]["id"] == job["id"]
    assert f"#{job['id']}" in status["message"]


def test_bad_requests_are_refused_in_the_error_shape_and_queue_nothing(atlas):
    client, _settings, store, _worker = atlas
    before = len(jobs_of_kind(store, FINDINGS_REPORT))
    for body in (
        {"stability_heads": "2"},  # strict: a string is not a number
        {"reconstruction": "yes"},
        {"reconstruction": 1},
        {"stability_heads": -1},
        {"stability_heads": 271},
        {"experiment_id": 0},
        {"stabilty_heads": 2},  # a misspelt field would otherwise be ignored
        ["not", "an", "object"],
    ):
        _error(client.post("/api/findings", json=body), 422, "invalid_request")
    _error(client.post("/api/findings", json={"experiment_id": 999_999}), 404, "not_found")
    # A job that exists but is no ablation experiment is no experiment either.
    cluster_job = next(j for j in client.get("/api/jobs").json() if j["kind"] != ABLATION_EXPERIMENT)
    _error(client.post("/api/findings", json={"experiment_id": cluster_job["id"]}), 404, "not_found")
    _error(client.post("/api/findings", json={"model": "no-such-model"}), 404, "not_found")
    assert len(jobs_of_kind(store, FINDINGS_REPORT)) == before


def test_the_report_serves_the_stored_predictors_clustering_and_experiment(reported, atlas):
    _client, settings, store, _worker = atlas
    after = reported["after"]
    assert after.status_code == 200
    body = after.json()
    assert body["job_id"] == reported["job_id"] and body["finished_at"] and body["status"]["state"] == "ready"
    f = body["findings"]
    assert f["model"] == settings.model.name and f["inferences_per_task"]["identifiers"] > 0
    assert f["command"] == "attnlens report --no-reconstruction --stability-heads 2"
    assert f["reconstruction"]["reason"] and "switched off" in f["reconstruction"]["reason"]
    assert f["reconstruction"]["model"] is None
    assert f["generalisation"]["reason"] and f["generalisation"]["models"] == [settings.model.name]
    recurrence = f["recurrence"]
    clustering = latest_clustering(store, settings.model.name)
    assert clustering is not None and recurrence["clustering_id"] == clustering.id
    assert recurrence["reason"] is None and recurrence["heads"] == 16 and len(recurrence["stability"]) == 2
    # Correctness: exactly the newest predictor of each (task, kind), with its stored accuracy.
    rows = {r["predictor_id"]: r for r in f["correctness"]["rows"]}
    listed = {p["id"]: p for p in reported["predictors"]}
    assert set(rows) == set(listed) and len(rows) == 2
    for pid, p in listed.items():
        row = rows[pid]
        assert (row["task"], row["kind"], row["n_rows"]) == (p["task"], p["kind"], p["n_rows"])
        assert row["accuracy"] == {
            "estimate": p["accuracy"],
            "low": p["accuracy_low"],
            "high": p["accuracy_high"],
        }
        assert row["chance"] == pytest.approx(p["chance"])
    # Dose: the experiment that ran, point by point.
    dose, experiment = f["dose"], reported["experiment"]
    assert dose["reason"] is None and dose["experiment_id"] == experiment["id"]
    assert dose["baseline_accuracy"] == experiment["result"]["baseline_accuracy"]
    assert [(p["rule"], p["n"], p["accuracy"]["estimate"]) for p in dose["points"]] == [
        (r["rule"], r["n"], r["accuracy"]) for r in experiment["result"]["rows"]
    ]


def test_the_downloads_hold_the_same_figures(reported):
    f = reported["after"].json()["findings"]
    md, page = reported["md"], reported["html"]
    assert md.status_code == 200 and md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for response, suffix in ((md, "md"), (page, "html")):
        assert (
            response.headers["content-disposition"]
            == f'attachment; filename="findings-{f["model"]}.{suffix}"'
        )
    for row in f["correctness"]["rows"]:
        cells = [row["task"], row["kind"], str(row["n_rows"]), pct(row["chance"]), ci(row["accuracy"])]
        assert "| " + " | ".join(cells) + " |" in md.text
        assert f"<td>{ci(row['accuracy'])}</td>" in page.text
    for point in f["dose"]["points"]:
        assert f"| {point['rule']} | {point['n']} | {point['n_heads']} | {ci(point['accuracy'])} |" in md.text
        assert f"<td>{ci(point['accuracy'])}</td>" in page.text
    assert f["reconstruction"]["reason"] in md.text
    assert page.text.count("Plotly.newPlot") == 2  # correctness bars and the dose curve
    assert "<title>attnlens findings: " in page.text


def test_a_stored_report_of_another_shape_is_skipped_not_a_server_error(reported, atlas):
    """A newer report job whose result no longer fits `Findings` (an older attnlens made it) is skipped:
    the newest readable report is served, and downloads still work."""
    client, settings, store, _worker = atlas
    job_id = enqueue_job(store, FINDINGS_REPORT, {"model": settings.model.name})
    claim_queued_job(store, job_id, "test")
    finish_job(store, job_id, "test", {"model": settings.model.name, "sections": "an old shape"})
    body = client.get("/api/findings").json()
    assert body["job_id"] == reported["job_id"] and body["status"]["state"] == "ready"
    assert client.get("/api/findings/report.md").status_code == 200
