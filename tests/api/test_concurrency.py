"""Many clients against a real server on 127.0.0.1: the bounded model queue answers 503 with Retry-After
when full, never a 5xx of another kind, never a hang; and it recovers."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn

from attnlens.api import create_app
from attnlens.service.local import LocalWorker

pytestmark = pytest.mark.slow
CLIENTS = 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_atlas):
    settings, store, _ = tiny_atlas
    narrow = settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"max_concurrent_model_calls": 1, "max_queued_requests": 2})
        }
    )
    worker = LocalWorker(narrow, store)
    worker.start(background=False)
    port = _free_port()
    config = uvicorn.Config(
        create_app(narrow, worker, store), host="127.0.0.1", port=port, log_level="warning"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


def test_saturated_worker_answers_503_with_retry_after_and_recovers(server):
    with httpx.Client(base_url=server, timeout=120) as client:
        inference = client.get("/api/inferences", params={"limit": 1}).json()["items"][0]["id"]
        heads = [f"L{a}H{b}" for a in range(4) for b in range(4)]

        def call(i: int) -> httpx.Response:
            return client.post(
                f"/api/inferences/{inference}/ablations",
                json={"heads": heads[: i % 16], "max_new_tokens": 24},
            )

        with ThreadPoolExecutor(CLIENTS) as pool:
            responses = list(pool.map(call, range(CLIENTS)))
        codes = sorted(r.status_code for r in responses)
        assert set(codes) <= {200, 503}, codes
        assert 200 in codes and 503 in codes, codes  # the bound is real, and work still gets done
        for r in responses:
            if r.status_code == 503:
                assert int(r.headers["Retry-After"]) >= 1 and r.json()["code"] == "busy"
        # Reads never wait for the model, and the model serves again once the burst is over.
        assert client.get("/api/health").status_code == 200
        assert call(3).status_code == 200
