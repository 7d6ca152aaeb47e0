"""Population ablation experiments: queued through the API, run by the worker's job runner."""

from __future__ import annotations

from attnlens.atlas.experiments import run_ablation_experiment
from attnlens.contracts.jobs import ABLATION_EXPERIMENT
from attnlens.service.jobs import JobRunner
from attnlens.service.local import LocalWorker
from tests.conftest import JAVA_FIXTURES, JAVA_FIXTURES_CORPUS


def _run_queued(tiny_atlas) -> None:
    settings, store, _ = tiny_atlas
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    assert JobRunner(settings, store, worker, {ABLATION_EXPERIMENT: run_ablation_experiment}).run_once()


def test_random_rule_experiment_runs_to_a_dose_table(atlas_client, tiny_atlas):
    body = {
        "task": "identifiers",
        "rules": ["random"],
        "n": [4, 1, 16],
        "scenarios": 3,
        "corpus": JAVA_FIXTURES_CORPUS,
    }
    queued = atlas_client.post("/api/experiments", json=body)
    assert queued.status_code == 202 and queued.json()["state"] == "queued"
    _run_queued(tiny_atlas)
    job = atlas_client.get(f"/api/jobs/{queued.json()['id']}").json()
    assert job["state"] == "succeeded", job["error"]
    result = job["result"]
    assert result["scenarios"] >= 2 and [r["n"] for r in result["rows"]] == [1, 4, 16]
    for row in result["rows"]:
        assert row["n_heads"] == row["n"] and len(set(row["heads"])) == row["n"]
        assert 0 <= row["accuracy_low"] <= row["accuracy"] <= row["accuracy_high"] <= 1
        assert row["change"] == row["accuracy"] - result["baseline_accuracy"]
        assert row["i2c"] >= 0 and row["c2i"] >= 0
    assert job["progress_done"] == job["progress_total"] == 4


def test_shap_rules_without_a_predictor_fail_with_the_fix(atlas_client, tiny_atlas):
    body = {"task": "identifiers", "rules": ["pos"], "n": [1], "scenarios": 3, "corpus": JAVA_FIXTURES_CORPUS}
    queued = atlas_client.post("/api/experiments", json=body).json()
    _run_queued(tiny_atlas)
    job = atlas_client.get(f"/api/jobs/{queued['id']}").json()
    assert job["state"] == "failed" and "attnlens predictors train" in job["error"]


def test_bad_experiments_are_refused_before_queueing(atlas_client):
    def status(body):
        r = atlas_client.post("/api/experiments", json=body)
        return r.status_code, r.json().get("code")

    assert status({"task": "identifiers", "rules": ["best"]}) == (400, "invalid_input")
    assert status({"task": "nonsense"}) == (400, "invalid_input")
    assert status({"task": "identifiers", "corpus": "/no/such/corpus"}) == (400, "corpus_error")
    assert status({"task": "identifiers", "n": [-1]}) == (400, "invalid_input")
    assert status({"task": "identifiers", "scenarios": 1}) == (422, "invalid_request")


def test_every_rule_the_api_offers_by_default_is_one_the_analysis_runs():
    """One list of rules (contracts); the request's default and the selection code both use it."""
    from attnlens.analysis.ablation import HeadRanking, select_heads
    from attnlens.api.schemas import ExperimentRequest
    from attnlens.heads import HeadRef

    scores = {HeadRef(0, h): float(h - 2) for h in range(5)}
    for rule in ExperimentRequest(task="identifiers").rules:
        assert len(select_heads(HeadRanking.from_means(scores), rule, 2, eps=0.5, seed=0).heads) >= 1, rule


def test_more_heads_than_the_model_has_are_refused_before_queueing(atlas_client):
    """The tiny model has 4 x 4 = 16 heads: n = 17 is refused with the count, n = 16 (all) is accepted."""
    before = len(atlas_client.get("/api/jobs?limit=200").json())
    body = {"task": "identifiers", "rules": ["random"], "scenarios": 3, "corpus": JAVA_FIXTURES_CORPUS}
    refused = atlas_client.post("/api/experiments", json=body | {"n": [1, 17, 300]})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_input")
    message = refused.json()["error"]
    assert "n = 17, 300" in message and "16 heads of tiny-starcoder2" in message and "at most 16" in message
    assert len(atlas_client.get("/api/jobs?limit=200").json()) == before

    accepted = atlas_client.post("/api/experiments", json=body | {"n": [16]})
    assert accepted.status_code == 202 and accepted.json()["parameters"]["n"] == [16]
    # Left out, n is the default counts that fit the model (1, 2, 5, 10 of 1, 2, 5, 10, 20, 50).
    default = atlas_client.post("/api/experiments", json=body)
    assert default.status_code == 202 and default.json()["parameters"]["n"] == [1, 2, 5, 10]
    for job in (accepted.json(), default.json()):  # the shared atlas's queue stays as it was
        assert atlas_client.post(f"/api/jobs/{job['id']}/cancel").json()["state"] == "cancelled"


def test_the_job_refuses_more_heads_than_the_served_model_has(atlas_client, tiny_atlas):
    """Queued before the model changed (here: written straight into the queue), the job fails plainly."""
    from attnlens.store.jobs import enqueue_job, get_job

    _settings, store, _ = tiny_atlas
    parameters = {"task": "identifiers", "rules": ["random"], "n": [2, 300], "scenarios": 3}
    job_id = enqueue_job(store, ABLATION_EXPERIMENT, parameters | {"corpus": str(JAVA_FIXTURES), "seed": 0})
    _run_queued(tiny_atlas)
    job = get_job(store, job_id)
    assert job.state == "failed" and "n = 300 is more than the 16 heads" in job.error
