"""Request bodies over `api.max_body_bytes` are refused with 413 in the one error shape before they are
parsed, whether the size is declared (Content-Length) or streamed (chunked), on the API and the worker."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from attnlens.api import create_app
from attnlens.api.worker_app import create_worker_app
from attnlens.service.local import LocalWorker

LIMIT = 2_000


@pytest.fixture(scope="module")
def limited(tiny_atlas):
    settings, store, _ = tiny_atlas
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"max_body_bytes": LIMIT})})
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    with (
        TestClient(create_app(settings, worker, store)) as api,
        TestClient(create_worker_app(worker, max_body_bytes=LIMIT)) as remote,
    ):
        yield api, remote


def assert_refused(response) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert set(body) == {"ok", "status", "code", "error", "errors"}
    assert (body["ok"], body["status"], body["code"]) == (False, 413, "input_too_large")
    assert f"{LIMIT:,} bytes" in body["error"] and "ATTNLENS_API__MAX_BODY_BYTES" in body["error"]


def test_a_declared_body_over_the_limit_is_refused_unparsed(limited):
    api, _ = limited
    # Not JSON at all: were it parsed, the answer would be a 422 about invalid JSON.
    response = api.post(
        "/api/analyze", content=b"{" * (LIMIT + 1), headers={"content-type": "application/json"}
    )
    assert_refused(response)


def test_a_streamed_body_over_the_limit_is_refused(limited):
    api, _ = limited

    def chunks():  # no Content-Length: sent chunked, counted as it arrives
        for _ in range(10):
            yield b" " * 500

    response = api.post("/api/analyze", content=chunks(), headers={"content-type": "application/json"})
    assert_refused(response)


def test_a_body_under_the_limit_is_read_and_validated_as_before(limited):
    api, _ = limited
    response = api.post("/api/analyze", json={"code": 12})
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"
    response = api.post("/api/analyze", content=b"{" * 100, headers={"content-type": "application/json"})
    assert response.status_code == 422  # read and parsed: invalid JSON


def test_the_worker_service_refuses_too_large_bodies_too(limited):
    _, remote = limited
    response = remote.post(
        "/worker/ablate", content=b"x" * (LIMIT + 1), headers={"content-type": "application/json"}
    )
    assert_refused(response)
