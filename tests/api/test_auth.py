"""Exposure beyond loopback: refused without a token at start-up; with one, every /api and /worker call
must carry it (401 in the one error shape otherwise), the pages still load, and no CORS unless origins are
listed."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from attnlens.api import create_app
from attnlens.api.auth import check_exposure, is_loopback, token_matches
from attnlens.api.worker_app import create_worker_app
from attnlens.cli import main
from attnlens.config import APISettings, Settings
from attnlens.errors import InsecureExposure, ModelUnavailable
from attnlens.service.http import HttpWorker
from attnlens.service.local import LocalWorker

TOKEN = "s3cret-token-of-enough-length"
ERROR_KEYS = {"ok", "status", "code", "error", "errors"}


def with_api(settings: Settings, **changes: object) -> Settings:
    api = APISettings.model_validate({**settings.api.model_dump(), **changes})
    return settings.model_copy(update={"api": api})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("lab-server.example.org", False),  # a name may resolve to any interface
    ],
)
def test_loopback_is_told_from_everything_else(host, loopback):
    assert is_loopback(host) is loopback


def test_binding_beyond_loopback_needs_a_token_or_the_explicit_flag(caplog):
    check_exposure(APISettings(), "127.0.0.1")  # loopback: no token needed
    with pytest.raises(InsecureExposure, match="ATTNLENS_API__TOKEN") as refused:
        check_exposure(APISettings(), "0.0.0.0")
    assert "--insecure-no-token" in refused.value.message and "127.0.0.1" in refused.value.message
    check_exposure(APISettings(token=TOKEN), "0.0.0.0")
    with caplog.at_level(logging.WARNING, logger="attnlens.api.auth"):
        check_exposure(APISettings(insecure_no_token=True), "0.0.0.0", service="the test server")
    assert any("WITHOUT A TOKEN" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_a_short_token_is_refused_with_how_to_make_one():
    with pytest.raises(ValidationError, match="at least 16 characters.*token_urlsafe"):
        APISettings(token="short")


def test_the_token_is_compared_whole_and_only_as_bearer():
    assert token_matches(f"Bearer {TOKEN}", TOKEN)
    assert token_matches(f"bearer {TOKEN}", TOKEN)  # the scheme is case-insensitive (RFC 7235)
    for header in (None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", "Bearer "):
        assert not token_matches(header, TOKEN), header


@pytest.mark.parametrize("command", [["serve"], ["worker", "serve"]])
def test_the_servers_refuse_to_start_beyond_loopback_without_a_token(command, tmp_path, capsys):
    # The check comes before the model loads or anything listens: the command exits at once with the message.
    with pytest.raises(SystemExit) as exited:
        main(["--data-dir", str(tmp_path / "data"), *command, "--host", "0.0.0.0"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "without a token" in err and "ATTNLENS_API__TOKEN" in err
    assert not (tmp_path / "data").exists()  # nothing was opened or created


@pytest.fixture(scope="module")
def guarded(tiny_atlas):
    settings, store, _ = tiny_atlas
    settings = with_api(settings, token=TOKEN)
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        yield client, worker


def test_api_calls_without_the_token_get_401_in_the_error_shape(guarded):
    client, _ = guarded
    for method, path in [("GET", "/api/health"), ("GET", "/api/inferences"), ("POST", "/api/analyze")]:
        missing = client.request(method, path)
        assert missing.status_code == 401, (path, missing.text)
        body = missing.json()
        assert set(body) == ERROR_KEYS and (body["status"], body["code"]) == (401, "unauthorized")
        assert "Authorization: Bearer" in body["error"]
        assert missing.headers["www-authenticate"] == 'Bearer realm="attnlens"'
    wrong = client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}-not"})
    assert wrong.status_code == 401 and "not this server's token" in wrong.json()["error"]
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    # an unknown route is hidden behind the token too (no probing of what exists)
    assert client.get("/api/no-such-route").status_code == 401


def test_api_calls_with_the_token_work(guarded):
    client, _ = guarded
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/health", headers=auth).status_code == 200
    assert client.get("/api/inferences", params={"limit": 1}, headers=auth).json()["items"]
    # the token does not stop the other checks: a bad request is still a 422, not a pass
    assert client.post("/api/analyze", json={"code": 7}, headers=auth).status_code == 422


def test_pages_and_schema_load_without_the_token_and_declare_it(guarded):
    client, _ = guarded
    assert client.get("/").status_code == 200  # HTML/JS hold no data; they ask for the token on 401
    assert client.get("/js/api.js").status_code == 200
    assert client.get("/api/docs").status_code == 200
    schema = client.get("/api/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The server's ATTNLENS_API__TOKEN.",
    }
    assert schema["security"] == [{"bearer": []}]


def test_no_cors_by_default(guarded, atlas_client):
    for client, headers in ((atlas_client, {}), (guarded[0], {"Authorization": f"Bearer {TOKEN}"})):
        simple = client.get("/api/health", headers={**headers, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers
        preflight = client.options(
            "/api/health",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers


def test_listed_origins_get_cors_and_their_preflight_needs_no_token(tiny_atlas):
    settings, store, _ = tiny_atlas
    settings = with_api(settings, token=TOKEN, cors_origins=["https://lab.example.org"])
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    with TestClient(create_app(settings, worker, store)) as client:
        preflight = client.options(
            "/api/health",
            headers={
                "Origin": "https://lab.example.org",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://lab.example.org"
        other = client.get(
            "/api/health", headers={"Origin": "https://evil.example", "Authorization": f"Bearer {TOKEN}"}
        )
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
        # CORS admits the origin's pages, not its requests: the token is still required
        assert client.get("/api/health", headers={"Origin": "https://lab.example.org"}).status_code == 401


def test_the_worker_service_requires_the_shared_token(guarded):
    _, local = guarded
    service = TestClient(create_worker_app(local, max_body_bytes=4096, token=TOKEN))
    refused = service.get("/worker/model_shape")
    assert refused.status_code == 401 and set(refused.json()) == ERROR_KEYS
    assert HttpWorker(client=service, token=TOKEN).model_shape() == (4, 4)
    # An API holding another token is told what to fix: the deployment's tokens, not the user's request.
    with pytest.raises(ModelUnavailable, match="same ATTNLENS_API__TOKEN"):
        HttpWorker(client=service, token=TOKEN + "-other").model_shape()
    assert HttpWorker(client=service).status()["state"] == "error"
