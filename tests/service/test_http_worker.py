"""The split deployment: the API talking to the worker service over HTTP behaves as with a local worker."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from attnlens.api import create_app
from attnlens.api.worker_app import create_worker_app
from attnlens.errors import HeadOutOfRange, ModelUnavailable
from attnlens.heads import HeadRef
from attnlens.service.http import HttpWorker
from attnlens.service.local import LocalWorker


@pytest.fixture(scope="module")
def split(tiny_atlas):
    settings, store, _ = tiny_atlas
    local = LocalWorker(settings, store)
    local.start(background=False)
    remote = HttpWorker(
        client=TestClient(create_worker_app(local, max_body_bytes=local.settings.api.max_body_bytes))
    )
    with TestClient(create_app(settings, remote, store)) as api:
        yield local, remote, api


def test_remote_worker_answers_like_the_local_one(split):
    local, remote, _ = split
    assert remote.status()["model"] == json.loads(
        json.dumps(local.status()["model"])
    )  # tuples travel as lists
    assert remote.model_shape() == (4, 4)
    prompt = list(range(5, 60))
    assert (remote.head_pattern(prompt, HeadRef(1, 2)) == local.head_pattern(prompt, HeadRef(1, 2))).all()
    a = remote.ablate(prompt, [HeadRef(0, 1)], max_new_tokens=4, expected_token_id=7)
    b = local.ablate(prompt, [HeadRef(0, 1)], max_new_tokens=4, expected_token_id=7)
    assert a.ablated_ids == b.ablated_ids and a.kl_at_hole == b.kl_at_hole and a.diff == b.diff
    with pytest.raises(HeadOutOfRange):
        remote.ablate(prompt, [HeadRef(9, 0)], max_new_tokens=2, expected_token_id=None)


def test_api_over_http_worker(split):
    _, _, api = split
    first = api.get("/api/inferences", params={"limit": 1}).json()["items"][0]
    body = api.post(f"/api/inferences/{first['id']}/ablations", json={"heads": []}).json()
    assert body["changed"] is False and body["kl_at_hole"] == 0.0
    bad = api.post(f"/api/inferences/{first['id']}/ablations", json={"heads": ["L0H9"]})
    assert bad.status_code == 422 and bad.json()["code"] == "head_out_of_range"
    assert api.get("/api/health").json()["worker"]["state"] == "ready"


def test_unreachable_worker_is_a_clear_503():
    remote = HttpWorker("http://127.0.0.1:9", timeout_s=2)
    assert remote.status()["state"] == "error" and "cannot be reached" in remote.status()["error"]
    with pytest.raises(ModelUnavailable, match="cannot be reached"):
        remote.model_shape()


def test_remote_analysis_is_the_same_typed_result(split):
    """A pasted hole crosses the HTTP boundary as the contract type and comes back equal (clusters,
    prediction and all), so the API cannot tell the two workers apart."""
    from attnlens.contracts.results import HoleRequest, PastedHole

    local, remote, _ = split
    code = "class A {\n    int twice(int x) {\n        return x + x;\n    }\n}\n"
    hole = HoleRequest(cursor=0, task="identifiers")
    a = remote.analyze(code, hole, None)
    b = local.analyze(code, hole, None)
    assert [type(r) for r in a] == [PastedHole] and a == b


def test_remote_unstored_analysis_is_the_same_and_writes_nothing(split):
    """`store=False` crosses the HTTP boundary too: both workers answer the same result, grid included,
    and neither writes a row."""
    from sqlalchemy import func, select

    from attnlens.contracts.results import HoleRequest, PastedGrid
    from attnlens.store.models import HeadPattern, Inference, Scenario

    local, remote, _ = split
    store = local.open_store()

    def rows() -> tuple[int, ...]:
        with store.session() as session:
            return tuple(
                int(session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Scenario, Inference, HeadPattern)
            )

    before = rows()
    code = "class B {\n    int thrice(int y) {\n        return y + y + y;\n    }\n}\n"
    hole = HoleRequest(cursor=0, task="identifiers")
    a = remote.analyze(code, hole, None, store=False)
    b = local.analyze(code, hole, None, store=False)
    assert a == b and [r.inference_id for r in a] == [None]
    assert isinstance(a[0].grid, PastedGrid) and (a[0].grid.n_layers, a[0].grid.n_heads) == (4, 4)
    assert len(a[0].grid.stats["entropy"]) == 16
    assert rows() == before


def test_a_hole_preview_crosses_the_http_boundary_aligned_and_refusals_keep_their_code(split):
    """The worker service widens a preview with its model's tokens, as the in-process worker does."""
    from attnlens.contracts.results import HoleRequest
    from attnlens.errors import InvalidHole

    local, remote, api = split
    code = "class A {\n    int twice(int x) {\n        return x + x;\n    }\n}\n"
    hole = HoleRequest(cursor=0, task="identifiers")
    assert remote.preview_holes(code, hole, None) == local.preview_holes(code, hole, None)
    answer = api.post("/api/analyze/holes", json={"code": code, "hole": {"cursor": 0, "task": "identifiers"}})
    assert answer.status_code == 200 and answer.json()["aligned"] is True and answer.json()["holes"]
    with pytest.raises(InvalidHole):
        remote.preview_holes(code, HoleRequest(start=5, end=5), None)
