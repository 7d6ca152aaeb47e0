"""docker-compose.yml describes the split deployment (no Docker engine runs here, so check the file)."""

from __future__ import annotations

from pathlib import Path

import yaml

from attnlens.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[1]


def test_compose_names_the_right_services_and_commands():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"backend", "worker", "postgres"}
    backend, worker = services["backend"], services["worker"]
    # `python -m backend` is `attnlens serve`: it checks the bind address against the token before listening
    assert backend["command"] == ["python", "-m", "backend"]
    assert backend["environment"]["ATTNLENS_API__HOST"] == "0.0.0.0"
    assert backend["environment"]["ATTNLENS_API__WORKER_URL"] == "http://worker:8001"
    # both listen beyond loopback: compose must refuse to start without the shared token (`${VAR:?...}`)
    for service in (backend, worker):
        assert service["environment"]["ATTNLENS_API__TOKEN"].startswith("${ATTNLENS_API__TOKEN:?")
    assert worker["command"][:5] == ["python", "-m", "worker", "worker", "serve"]
    assert (
        "--port" in worker["command"] and worker["command"][worker["command"].index("--port") + 1] == "8001"
    )
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert services["postgres"]["profiles"] == ["postgres"]
    for name in ("backend", "worker"):
        assert "attnlens-data:/data" in services[name]["volumes"]
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
    assert (ROOT / "docker" / "Dockerfile").is_file()
    assert backend["ports"] == ["127.0.0.1:8000:8000"]  # loopback unless changed on purpose
    # the backend looks up clusters, maps and predictors by the served model's name: both must agree
    assert backend["environment"]["ATTNLENS_MODEL__NAME"] == worker["environment"]["ATTNLENS_MODEL__NAME"]


def test_compose_commands_exist_in_the_code():
    groups = {g.name for g in cli_app.registered_groups}
    assert "worker" in groups
    import backend.main

    assert callable(backend.main.create_app)
