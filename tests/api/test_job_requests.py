"""POST /api/jobs queues the atlas jobs (build, cluster, map, train predictors) with exactly the parameters
the CLI stores for the same request (both call `attnlens.contracts.job_parameters`); GET /api/jobs/kinds
describes each kind's fields for the Jobs page's form. Every bad body is a 400 or 422 in the one error shape
(never a 500), and queues nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from attnlens.api import create_app
from attnlens.api.schemas_jobs import JOB_REQUESTS, MAX_API_PER_TASK, kind_of
from attnlens.atlas.handlers import JOB_HANDLERS
from attnlens.config import APISettings, Settings
from attnlens.contracts.job_parameters import DEFAULT_PER_TASK, build_parameters, predictor_parameters
from attnlens.contracts.jobs import (
    ATLAS_BUILD,
    ATLAS_CLUSTER,
    ATLAS_MAP,
    HEAD_SCORES,
    PATTERN_FAMILIES,
    TRAIN_PREDICTORS,
)
from attnlens.contracts.tasks import TASKS
from attnlens.errors import InvalidInput
from attnlens.service.local import LocalWorker
from attnlens.store import Store, open_store
from attnlens.store.jobs import get_job, list_jobs, request_cancel
from tests.api.test_maps_clusters import copy_tiny_atlas
from tests.conftest import JAVA_FIXTURES, JAVA_FIXTURES_CORPUS

ERROR_KEYS = {"ok", "status", "code", "error", "errors"}
TOKEN = "a-token-of-enough-length-for-jobs"
BUILD = {"kind": ATLAS_BUILD, "corpus": JAVA_FIXTURES_CORPUS}


@pytest.fixture(scope="module")
def served(tiny_atlas, tmp_path_factory) -> Iterator[tuple[TestClient, Settings, Store]]:
    """(client, settings, store) over a private copy of the tiny atlas: these tests queue jobs. The worker
    runs no jobs, so everything queued stays queued for the test to read."""
    settings = copy_tiny_atlas(tiny_atlas, tmp_path_factory.mktemp("job-requests") / "data")
    store = open_store(settings)
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        yield client, settings, store


@pytest.fixture(autouse=True)
def empty_queue(served):
    """Each test starts and ends with nothing queued, so queue places and counts are its own."""
    _, _, store = served

    def clear() -> None:
        for job in list_jobs(store, states=["queued"], limit=1000):
            request_cancel(store, job.id)

    clear()
    yield
    clear()


def queued(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/api/jobs", json=body)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["state"] == "queued" and job["kind"] == body["kind"]
    return job


def invoke(app, *args: str) -> Result:
    """Run the CLI in this process; its logging setup (to the runner's stream, closed after) is undone, so
    that later tests' logs do not go to a closed file."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def cli_parameters(monkeypatch, tmp_path, *args: str) -> tuple[str, dict[str, Any]]:
    """What the CLI would queue for `attnlens <args>`: its real option parsing and parameter building, with
    the foreground runner replaced by one that records what it was given (nothing runs)."""
    from attnlens.cli import analysis, app

    seen: list[tuple[str, dict[str, Any]]] = []

    def record(_settings, _store, kind, parameters, _runtime, _unit):
        seen.append((kind, parameters))
        return {"job": 0, "state": "queued"}

    monkeypatch.setattr(analysis, "run_job_with_progress", record)
    done = invoke(app, "--data-dir", str(tmp_path / "cli-data"), *args)
    assert done.exit_code == 0, (done.output, done.exception)
    (only,) = seen
    return only


def test_a_build_queues_the_parameters_the_cli_builds(served):
    client, settings, store = served
    job = queued(
        client, {**BUILD, "tasks": ["eol", "identifiers"], "per_task": 7, "seed": 3, "batch_size": 2}
    )
    # `attnlens atlas build --corpus <path> --tasks eol,identifiers --per-task 7 --seed 3 --batch-size 2`
    cli = build_parameters(str(JAVA_FIXTURES), "eol,identifiers", 7, 3, 2)
    stored = get_job(store, job["id"])
    assert (stored.kind, stored.parameters) == (ATLAS_BUILD, cli)
    # The answer names the corpus by its folder, not by the server path the worker reads.
    assert job["parameters"] == cli | {"corpus": JAVA_FIXTURES.name}
    assert cli["tasks"] == ["identifiers", "eol"]  # registry order, either way
    assert job["queue_place"] == 1  # shown at once on the Jobs page

    # Left out, every option takes the CLI's default: all tasks, 50 a task, mining.seed, atlas.batch_size.
    plain = queued(client, BUILD)
    cli_defaults = build_parameters(
        str(JAVA_FIXTURES), "all", DEFAULT_PER_TASK, settings.mining.seed, settings.atlas.batch_size
    )
    assert get_job(store, plain["id"]).parameters == cli_defaults
    assert plain["queue_place"] == 2


@pytest.mark.parametrize(
    ("body", "argv"),
    [
        ({"kind": ATLAS_CLUSTER}, ["atlas", "cluster", "--model", "tiny-starcoder2"]),
        ({"kind": ATLAS_MAP, "model": "tiny-starcoder2"}, ["atlas", "map", "--model", "tiny-starcoder2"]),
        ({"kind": TRAIN_PREDICTORS}, ["predictors", "train", "--model", "tiny-starcoder2"]),
        (
            {"kind": TRAIN_PREDICTORS, "tasks": ["random", "identifiers"]},
            ["predictors", "train", "--tasks", "random,identifiers", "--model", "tiny-starcoder2"],
        ),
    ],
)
def test_analysis_jobs_queue_what_the_cli_queues(served, monkeypatch, tmp_path, body, argv):
    client, _settings, store = served
    job = queued(client, body)
    kind, parameters = cli_parameters(monkeypatch, tmp_path, *argv)
    assert (get_job(store, job["id"]).kind, get_job(store, job["id"]).parameters) == (kind, parameters)
    assert kind == body["kind"] and parameters["model"] == "tiny-starcoder2"


def test_the_cli_refuses_an_unknown_task_as_the_api_does(served, tmp_path):
    from attnlens.cli import app

    done = invoke(
        app, "--data-dir", str(tmp_path / "d"), "predictors", "train", "--tasks", "identifiers,bogus"
    )
    assert isinstance(done.exception, InvalidInput) and "bogus" in done.exception.message
    with pytest.raises(InvalidInput, match="bogus"):
        predictor_parameters(["bogus"], "m")


def test_every_kind_has_a_handler_and_a_form(served):
    client, settings, _store = served
    kinds = client.get("/api/jobs/kinds")
    assert kinds.status_code == 200, kinds.text
    by_kind = {k["kind"]: k for k in kinds.json()}
    assert list(by_kind) == [
        ATLAS_BUILD, ATLAS_CLUSTER, ATLAS_MAP, TRAIN_PREDICTORS, HEAD_SCORES, PATTERN_FAMILIES,
    ]  # fmt: skip
    assert {kind_of(r) for r in JOB_REQUESTS} <= set(JOB_HANDLERS)  # the same jobs the worker runs
    build = {f["name"]: f for f in by_kind[ATLAS_BUILD]["fields"]}
    assert by_kind[ATLAS_BUILD]["command"] == "attnlens atlas build"
    assert build["per_task"] | {"description": ""} == {
        "name": "per_task", "type": "integer", "description": "", "required": False, "default": 50,
        "minimum": 1, "maximum": MAX_API_PER_TASK, "max_length": None, "choices": None, "choices_from": None,
    }  # fmt: skip
    assert build["seed"]["default"] == settings.mining.seed
    assert (build["batch_size"]["default"], build["batch_size"]["maximum"]) == (
        settings.atlas.batch_size,
        256,
    )
    default = next(c for c in client.get("/api/corpora").json() if c["default"])
    assert build["corpus"]["choices_from"] == "/api/corpora" and build["corpus"]["default"] == default["name"]
    assert build["tasks"]["choices_from"] == "/api/tasks" and build["tasks"]["default"] == list(TASKS)
    train = {f["name"]: f for f in by_kind[TRAIN_PREDICTORS]["fields"]}
    assert train["tasks"]["default"] is None and train["model"]["choices"] == ["tiny-starcoder2"]
    scores = {f["name"]: f for f in by_kind[HEAD_SCORES]["fields"]}
    assert by_kind[HEAD_SCORES]["command"] == "attnlens heads backfill"
    assert list(scores) == ["limit"] and scores["limit"]["default"] is None


def test_the_forms_defaults_queue_the_same_job_as_leaving_them_out(served):
    """What the form fills in from GET /api/jobs/kinds is what the server would use anyway."""
    client, _settings, store = served
    for kind in client.get("/api/jobs/kinds").json():
        filled = {f["name"]: f["default"] for f in kind["fields"] if f["default"] is not None}
        if kind["kind"] == ATLAS_BUILD:
            filled["corpus"] = JAVA_FIXTURES_CORPUS  # the demo corpus is not on this machine
        left_out = {"kind": kind["kind"]} | ({"corpus": JAVA_FIXTURES_CORPUS} if "corpus" in filled else {})
        a, b = queued(client, {"kind": kind["kind"], **filled}), queued(client, left_out)
        assert get_job(store, a["id"]).parameters == get_job(store, b["id"]).parameters, kind["kind"]


def test_a_build_that_names_no_corpus_uses_the_default_one(served):
    """The corpus GET /api/corpora marks as the default (the demo atlas's JDK sources before any build):
    queued when its files are on this machine, else refused in words that name it."""
    client, _settings, store = served
    default = next(c for c in client.get("/api/corpora").json() if c["default"])
    answer = client.post("/api/jobs", json={"kind": ATLAS_BUILD, "per_task": 2})
    if default["available"]:
        assert answer.status_code == 202, answer.text
        assert get_job(store, answer.json()["id"]).parameters["per_task"] == 2
    else:
        assert answer.status_code == 400 and answer.json()["code"] == "corpus_error", answer.text
        assert repr(default["name"]) in answer.json()["error"]


def test_an_identical_job_is_queued_again_after_the_first(served):
    """Neither the store nor the CLI refuses duplicates (the docs string says so): the second waits behind."""
    client, _settings, _store = served
    first, second = (queued(client, {"kind": ATLAS_CLUSTER}) for _ in range(2))
    assert second["id"] != first["id"] and second["queue_place"] == first["queue_place"] + 1


HUGE = "x" * 5000


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"kind": "head_profiles"}, 422, "does not match any of the expected tags"),
        ({"kind": 7}, 422, "kind"),
        ({}, 422, "kind"),
        ({"corpus": JAVA_FIXTURES_CORPUS}, 422, "kind"),
        ({**BUILD, "tasks": ["bogus"]}, 400, "bogus"),
        ({**BUILD, "tasks": ["eol,identifiers"]}, 400, "'eol,identifiers'"),
        ({**BUILD, "tasks": []}, 422, "tasks"),
        ({**BUILD, "tasks": "identifiers"}, 422, "tasks"),
        ({**BUILD, "tasks": ["eol"] * 14}, 422, "tasks"),
        ({"kind": ATLAS_BUILD, "corpus": "no-such-corpus"}, 400, "unknown corpus"),
        ({"kind": ATLAS_BUILD, "corpus": "/etc"}, 400, "unknown corpus"),
        ({"kind": ATLAS_BUILD, "corpus": "../../etc"}, 400, "unknown corpus"),
        ({**BUILD, "per_task": 0}, 422, "per_task"),
        ({**BUILD, "per_task": MAX_API_PER_TASK + 1}, 422, "5000"),
        ({**BUILD, "per_task": "50"}, 422, "integer"),
        ({**BUILD, "per_task": 2.5}, 422, "integer"),
        ({**BUILD, "per_task": True}, 422, "integer"),
        ({**BUILD, "per_task": 10**30}, 422, "per_task"),
        ({**BUILD, "seed": -1}, 422, "seed"),
        ({**BUILD, "batch_size": 257}, 422, "batch_size"),
        ({"kind": ATLAS_BUILD, "corpus": HUGE}, 422, "corpus"),
        ({**BUILD, "tasks": [HUGE]}, 422, "tasks"),
        ({**BUILD, "model": "x"}, 422, "model"),  # not an option
        ({"kind": ATLAS_CLUSTER, "model": "no-such-model"}, 400, "no-such-model"),
        ({"kind": ATLAS_CLUSTER, "model": ""}, 422, "model"),
        ({"kind": ATLAS_MAP, "model": HUGE}, 422, "model"),
        ({"kind": ATLAS_MAP, "per_task": 5}, 422, "per_task"),
        ({"kind": TRAIN_PREDICTORS, "tasks": ["identifiers", "bogus"]}, 400, "bogus"),
        ({"kind": TRAIN_PREDICTORS, "tasks": [3]}, 422, "tasks"),
        ([{"kind": ATLAS_CLUSTER}], 422, "invalid request"),
        ("atlas_cluster", 422, "invalid request"),
    ],
)
def test_bad_bodies_are_refused_in_the_error_shape_and_queue_nothing(served, body, status, words):
    client, _settings, _store = served
    before = len(client.get("/api/jobs", params={"limit": 500}).json())
    answer = client.post("/api/jobs", json=body)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert set(error) == ERROR_KEYS and error["ok"] is False and error["status"] == status
    assert words in error["error"] + " ".join(str(e) for e in error["errors"]), error
    assert len(client.get("/api/jobs", params={"limit": 500}).json()) == before


def test_bodies_that_are_not_json_or_too_large_get_the_error_shape(served):
    client, settings, _store = served
    for content, status in [
        (b"{not json", 422),
        (b"\xff\xfe", 422),
        (b'{"kind": "atlas_cluster", "model": "' + b"m" * (settings.api.max_body_bytes + 1) + b'"}', 413),
    ]:
        answer = client.post("/api/jobs", content=content, headers={"Content-Type": "application/json"})
        assert answer.status_code in (400, status), answer.text[:300]
        assert set(answer.json()) == ERROR_KEYS


def test_queuing_a_job_needs_the_token_where_the_server_has_one(served):
    _client, settings, store = served
    guarded = settings.model_copy(
        update={"api": APISettings.model_validate({**settings.api.model_dump(), "token": TOKEN})}
    )
    worker = LocalWorker(guarded, store)
    worker.start(background=False)
    with TestClient(create_app(guarded, worker, store)) as client:
        for method, path in [("POST", "/api/jobs"), ("GET", "/api/jobs/kinds")]:
            refused = client.request(method, path, json={"kind": ATLAS_CLUSTER})
            assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        before = len(list_jobs(store, states=["queued"]))
        assert before == 0  # the refused post queued nothing
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/api/jobs", json={"kind": ATLAS_CLUSTER}, headers=auth).status_code == 202
        assert client.get("/api/jobs/kinds", headers=auth).status_code == 200
