"""`GET /api/health` with a real worker holding the tiny model, and the API's torch-free import."""

from __future__ import annotations

import subprocess
import sys

from fastapi.testclient import TestClient

from attnlens.api import create_app
from attnlens.config import Settings
from attnlens.service.local import LocalWorker


def test_health_reports_loaded_model(settings: Settings):
    settings = settings.model_copy(
        update={"model": settings.model.model_copy(update={"name": "tiny-starcoder2"})}
    )
    worker = LocalWorker(settings)
    worker.start(background=False)
    client = TestClient(create_app(settings, worker))
    body = client.get("/api/health").json()
    assert body["ok"] is True
    assert body["worker"]["state"] == "ready"
    model = body["worker"]["model"]
    assert (model["n_layers"], model["n_heads"], model["n_kv_heads"]) == (4, 4, 2)
    assert model["supports_fim"] is True
    assert model["weights"] == "random weights (seed 1234), untrained"


def test_health_reports_a_model_that_failed_to_load(settings: Settings):
    settings = settings.model_copy(
        update={"model": settings.model.model_copy(update={"name": "/no/such/model"})}
    )
    worker = LocalWorker(settings)
    worker.start(background=False)
    body = TestClient(create_app(settings, worker)).get("/api/health").json()
    assert body["worker"]["state"] == "error"
    assert "could not load" in body["worker"]["error"]


def test_unknown_route_uses_the_error_shape(settings: Settings):
    client = TestClient(create_app(settings, LocalWorker(settings)))
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.json() == {
        "ok": False,
        "status": 404,
        "code": "not_found",
        "error": "Not Found",
        "errors": [],
    }


def test_api_package_never_imports_torch():
    code = (
        "import sys; import attnlens.api, backend.main; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_health_warns_when_the_checkpoint_was_trained_on_another_models_patterns(settings, tmp_path):
    """The default AP-MAE was trained on SmolLM2's patterns: serving the tiny StarCoder2 with it gets a
    warning in the worker's `apmae` status; a checkpoint trained on the served model gets none."""
    import json

    from tests.conftest import make_tiny_apmae

    tiny = settings.model.model_copy(update={"name": "tiny-starcoder2", "device": "cpu"})
    mismatched = settings.model_copy(update={"model": tiny})
    worker = LocalWorker(mismatched)
    worker.start(background=False)
    apmae = TestClient(create_app(mismatched, worker)).get("/api/health").json()["worker"]["apmae"]
    assert apmae["checkpoint"] == "default" and apmae["trained_on"] == "smollm2"
    assert "smollm2" in apmae["warning"] and "tiny-starcoder2" in apmae["warning"]
    assert "attnlens train-apmae --model tiny-starcoder2" in apmae["warning"]

    folder = make_tiny_apmae(tmp_path / "tiny-apmae")
    (folder / "training.json").write_text(json.dumps({"cache_spec": {"model": "tiny-starcoder2"}}))
    matched = mismatched.model_copy(
        update={"apmae": settings.apmae.model_copy(update={"checkpoint": str(folder), "device": "cpu"})}
    )
    worker = LocalWorker(matched)
    worker.start(background=False)
    apmae = TestClient(create_app(matched, worker)).get("/api/health").json()["worker"]["apmae"]
    assert apmae["trained_on"] == "tiny-starcoder2" and apmae["warning"] is None


def test_model_calls_while_the_model_loads_answer_503_with_retry_after(tiny_atlas):
    settings, store, _ = tiny_atlas
    loading = LocalWorker(settings, store)  # not started: its model is still on its way
    client = TestClient(create_app(settings, loading, store))
    assert client.get("/api/health").json()["worker"]["state"] in ("starting", "loading")
    first = client.get("/api/inferences", params={"limit": 1}).json()["items"][0]["id"]  # the atlas answers
    for response in (
        client.post(f"/api/inferences/{first}/ablations", json={"heads": ["L0H0"]}),
        client.post("/api/analyze", json={"code": "class A { int f() { return 1; } }"}),
    ):
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["code"] == "model_loading" and "retry in a few seconds" in body["error"]
        assert int(response.headers["Retry-After"]) > 0
