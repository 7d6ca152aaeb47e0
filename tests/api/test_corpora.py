"""Corpora are named over HTTP: POST /api/experiments takes a registered name (or a path under the
configured corpus root), refuses everything else with one message that says nothing about which server
paths exist, and queues nothing then; GET /api/corpora lists the names without their server paths."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from attnlens.api import create_app
from attnlens.config import Settings
from attnlens.contracts.jobs import ATLAS_BUILD, HF_SETTING, resolve_corpus
from attnlens.errors import CorpusError
from attnlens.service.local import LocalWorker
from attnlens.store import Store, open_store
from attnlens.store.jobs import claim_job, enqueue_job, finish_job
from tests.api.test_maps_clusters import copy_tiny_atlas
from tests.conftest import JAVA_FIXTURES, JAVA_FIXTURES_CORPUS

EXPERIMENT = {"task": "identifiers", "rules": ["random"], "n": [1], "scenarios": 3}


@pytest.fixture(scope="module")
def corpus_tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """root/project (a corpus), root/escape -> outside (a symlink out of the root), and outside/ (an
    existing corpus beside the root, reachable as ../outside)."""
    top = tmp_path_factory.mktemp("corpora")
    root, outside = top / "root", top / "outside"
    for folder in (root / "project", outside):
        folder.mkdir(parents=True)
        shutil.copy(JAVA_FIXTURES / "Lambdas.java", folder)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    return {"root": root, "project": root / "project", "outside": outside}


@pytest.fixture(scope="module")
def served(tiny_atlas, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Store, Any]]:
    """(settings, store, worker) over a private copy of the tiny atlas: these tests queue jobs."""
    mine = copy_tiny_atlas(tiny_atlas, tmp_path_factory.mktemp("corpora-atlas") / "data")
    store = open_store(mine)
    worker = LocalWorker(mine, store)
    worker.start(background=False)
    yield mine, store, worker


@pytest.fixture
def client_with(served) -> Iterator[Callable[..., TestClient]]:
    """A client whose settings have some `mining` (and optionally `atlas`) fields replaced."""
    settings, store, worker = served
    opened: list[TestClient] = []

    def make(atlas: dict[str, Any] | None = None, **mining: Any) -> TestClient:
        mine = settings.model_copy(
            update={
                "mining": settings.mining.model_copy(update=mining),
                "atlas": settings.atlas.model_copy(update=atlas or {}),
            }
        )
        client = TestClient(create_app(mine, worker, store))
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def job_count(client: TestClient) -> int:
    return len(client.get("/api/jobs?limit=200").json())


def queue(client: TestClient, corpus: str | None) -> dict[str, Any]:
    """Post an experiment that should be accepted; cancel it; return the job with the parameters the store
    holds (what the worker reads: the corpus's location). The API shows a corpus by its name only."""
    from pathlib import PurePath

    from attnlens.store.jobs import get_job

    body = EXPERIMENT if corpus is None else EXPERIMENT | {"corpus": corpus}
    response = client.post("/api/experiments", json=body)
    assert response.status_code == 202, response.json()
    job = response.json()
    assert client.post(f"/api/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
    stored = get_job(client.app.state.store, job["id"]).parameters
    shown = job["parameters"]["corpus"]
    location = stored["corpus"]
    assert shown == (location if location.startswith("hf:") else PurePath(location).name)
    assert "/" not in shown or shown.startswith("hf:")  # no server path leaves through the API
    return job | {"parameters": stored}


def refusal(client: TestClient, corpus: str) -> dict[str, Any]:
    """The error body of a refused experiment, checking its shape and that nothing was queued."""
    before = job_count(client)
    response = client.post("/api/experiments", json=EXPERIMENT | {"corpus": corpus})
    body = response.json()
    assert (response.status_code, body["code"]) == (CorpusError.status, "corpus_error"), (corpus, body)
    assert body == {"ok": False, "status": CorpusError.status, "code": "corpus_error",
                    "error": body["error"], "errors": []}  # fmt: skip
    assert job_count(client) == before, corpus
    return body


def test_a_registered_name_is_stored_as_its_location(client_with):
    client = client_with()
    job = queue(client, JAVA_FIXTURES_CORPUS)
    assert job["parameters"]["corpus"] == str(JAVA_FIXTURES)


def test_the_demo_corpus_is_named_demo_without_configuration(client_with, corpus_tree):
    client = client_with(atlas={"demo_corpus": str(corpus_tree["project"])})
    assert queue(client, "demo")["parameters"]["corpus"] == str(corpus_tree["project"])


def test_server_paths_are_refused_alike_without_a_root(client_with, corpus_tree):
    """Existing paths (/, /etc, the registered corpus's own folder) and missing ones get one message."""
    client = client_with()
    tries = ["/", "/etc", str(JAVA_FIXTURES), "/no/such/corpus", "../../", "nope", ".", ""]
    messages = {corpus: refusal(client, corpus)["error"] for corpus in tries}
    assert len(set(messages.values())) == 1, messages
    message = messages["/"]
    assert JAVA_FIXTURES_CORPUS in message and "demo" in message and "GET /api/corpora" in message
    assert "exist" not in message


def test_only_paths_under_the_root_are_accepted(client_with, corpus_tree):
    root = corpus_tree["root"]
    client = client_with(corpus_root=root)
    assert queue(client, str(corpus_tree["project"]))["parameters"]["corpus"] == str(corpus_tree["project"])
    assert queue(client, "project")["parameters"]["corpus"] == str(corpus_tree["project"].resolve())
    outside = corpus_tree["outside"]
    tries = [
        "/", "/etc", "/no/such/corpus", str(outside), "../outside", "project/../../outside",
        "../../../../../../etc", str(root / ".." / "outside"), "escape", "escape/Lambdas.java",
        str(root / "escape"), "missing", str(root / "missing"), "nope", "\x00",
    ]  # fmt: skip
    messages = {corpus: refusal(client, corpus)["error"] for corpus in tries}
    assert len(set(messages.values())) == 1, messages
    assert str(root) in messages["/"] and JAVA_FIXTURES_CORPUS in messages["/"]


def test_hf_datasets_need_the_setting(client_with):
    assert HF_SETTING in refusal(client_with(), "hf:foo")["error"]
    named = client_with(corpora={"stack": "hf:bigcode/the-stack-smol"})
    for corpus in ("hf:foo", "stack"):  # a dataset given directly, or by a registered name
        assert HF_SETTING in refusal(named, corpus)["error"]
    allowed = client_with(allow_hf_datasets=True, corpora={"stack": "hf:bigcode/the-stack-smol"})
    assert queue(allowed, "hf:foo")["parameters"]["corpus"] == "hf:foo"
    assert queue(allowed, "stack")["parameters"]["corpus"] == "hf:bigcode/the-stack-smol"


def test_corpora_lists_the_names_without_server_paths(client_with, corpus_tree):
    corpora = {"stack": "hf:bigcode/the-stack-smol", "gone": str(corpus_tree["root"] / "gone.zip")}
    client = client_with(corpus_root=corpus_tree["root"], corpora=corpora)
    response = client.get("/api/corpora")
    assert response.status_code == 200
    listed = {c["name"]: c for c in response.json()}
    assert set(listed) == {"demo", "gone"}  # the hf: one only where datasets are allowed
    assert listed["demo"]["default"] is True and listed["demo"]["description"].endswith("(archive src.zip)")
    assert listed["gone"] == {
        "name": "gone", "description": "archive gone.zip", "available": False, "default": False,
    }  # fmt: skip
    for location in (client.app.state.settings.atlas.demo_corpus, str(corpus_tree["root"])):
        assert location not in response.text
    allowed = client_with(allow_hf_datasets=True, corpora=corpora).get("/api/corpora").json()
    described = {c["name"]: c["description"] for c in allowed}
    assert described["stack"] == "Hugging Face dataset bigcode/the-stack-smol"


def test_a_registered_corpus_whose_files_are_gone_is_refused_without_its_path(client_with, corpus_tree):
    gone = str(corpus_tree["root"] / "gone.zip")
    message = refusal(client_with(corpora={"gone": gone}), "gone")["error"]
    assert "'gone' is registered but its files are missing" in message and gone not in message


def test_without_a_corpus_the_latest_build_is_used_by_name(client_with, served, corpus_tree):
    """Before any build, `demo`; once one ran, `atlas` (its corpus), listed as the default."""
    _settings, store, _worker = served
    client = client_with(atlas={"demo_corpus": str(JAVA_FIXTURES)})
    assert "atlas" not in {c["name"] for c in client.get("/api/corpora").json()}
    assert queue(client, None)["parameters"]["corpus"] == str(JAVA_FIXTURES)
    build = enqueue_job(store, ATLAS_BUILD, {"corpus": str(corpus_tree["project"])})
    claimed = claim_job(store, "corpora-test", kinds=[ATLAS_BUILD])
    assert claimed is not None and claimed.id == build
    finish_job(store, build, "corpora-test", {})
    listed = {c["name"]: c for c in client.get("/api/corpora").json()}
    assert listed["atlas"]["default"] is True and listed["demo"]["default"] is False
    assert listed["atlas"]["description"] == "the latest atlas build's corpus (folder project)"
    assert queue(client, None)["parameters"]["corpus"] == str(corpus_tree["project"])
    assert queue(client, "atlas")["parameters"]["corpus"] == str(corpus_tree["project"])


# The resolver itself, without the API.


def resolve(requested: str, root: Path | None = None, allow_hf: bool = False) -> str:
    registered = {"fixtures": str(JAVA_FIXTURES)}
    return resolve_corpus(requested, registered=registered, root=root, allow_hf=allow_hf)


def test_the_resolver_judges_symlinks_by_where_they_lead(corpus_tree):
    root = corpus_tree["root"]
    (root / "inner").symlink_to(root / "project", target_is_directory=True)
    try:
        assert resolve("inner", root) == str((root / "project").resolve())
        assert resolve(".", root) == str(root.resolve())
        with pytest.raises(CorpusError) as escaped:
            resolve("escape", root)
        with pytest.raises(CorpusError) as missing:
            resolve("inner/missing", root)
        assert escaped.value.message == missing.value.message
    finally:
        (root / "inner").unlink()


def test_the_resolver_survives_odd_paths(corpus_tree, tmp_path):
    root = corpus_tree["root"]
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(CorpusError):
        resolve(str(loop), tmp_path)
    for odd in ("a\x00b", "x" * 5000, "  ", ""):
        with pytest.raises(CorpusError):
            resolve(odd, root)
    assert resolve("fixtures", root) == str(JAVA_FIXTURES)
    with pytest.raises(CorpusError, match="name the dataset"):
        resolve("hf:", allow_hf=True)


def test_corpora_are_settable_as_json_and_reserved_names_refused(monkeypatch):
    monkeypatch.setenv("ATTNLENS_MINING__CORPORA", '{"jdk": "/usr/lib/jvm/openjdk-17/lib/src.zip"}')
    monkeypatch.setenv("ATTNLENS_MINING__CORPUS_ROOT", os.sep)
    settings = Settings(_env_file=None)
    assert settings.mining.corpora == {"jdk": "/usr/lib/jvm/openjdk-17/lib/src.zip"}
    assert settings.mining.corpus_root == Path(os.sep) and settings.mining.allow_hf_datasets is False
    monkeypatch.setenv("ATTNLENS_MINING__CORPORA", '{"demo": "/srv/other.zip"}')
    with pytest.raises(ValidationError, match="reserved corpus names"):
        Settings(_env_file=None)
