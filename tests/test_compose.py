"""docker-compose.yml describes the split deployment and the ray profile (no Docker engine runs here, so
check the file)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import yaml
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from attnlens.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
SERVICES = yaml.safe_load(COMPOSE_TEXT)["services"]
RAY_SERVICES = {"ray-head", "ray-worker", "backend-ray"}
# The build the README tells a person to run on the head (it also names `--model`).
RAY_BUILD = (
    "docker compose exec ray-head attnlens atlas build --engine ray --address auto --corpus /data/corpus "
    "--per-task 40 --actors 2 --gpus-per-actor 1 --cpus-per-actor 4"
)
TOKEN_REQUIRED = "${ATTNLENS_API__TOKEN:?"


def _ray_db_services() -> dict[str, dict]:
    """The ray profile's services that run attnlens (built from the image), so each opens the database."""
    return {n: s for n, s in SERVICES.items() if "ray" in s.get("profiles", []) and "build" in s}


def _default_of(value: str, variable: str) -> str:
    """The default of a `${VARIABLE:-default}` interpolation: what compose uses when VARIABLE is unset."""
    match = re.fullmatch(rf"\$\{{{variable}:-(.+)\}}", value)
    assert match, f"{value!r} is not ${{{variable}:-default}}"
    return match.group(1)


def _bytes(size: str) -> int:
    """Docker's size strings ("2gb", "512m"): binary units."""
    match = re.fullmatch(r"(\d+)\s*([kmg]?)b?", size.strip().lower())
    assert match, size
    return int(match.group(1)) * 1024 ** " kmg".index(match.group(2) or " ")


def _flag(command: list[str], name: str) -> str:
    values = [word.split("=", 1)[1] for word in command if word.startswith(f"{name}=")]
    assert len(values) == 1, f"{name}= must appear once in {command}"
    return values[0]


def _after(words: list[str], option: str) -> str:
    return words[words.index(option) + 1]


def test_compose_names_the_right_services_and_commands():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"backend", "worker", "postgres", "ray-head", "ray-worker", "backend-ray"}
    backend, worker = services["backend"], services["worker"]
    # `python -m backend` is `attnlens serve`: it checks the bind address against the token before listening
    assert backend["command"] == ["python", "-m", "backend"]
    assert backend["environment"]["ATTNLENS_API__HOST"] == "0.0.0.0"
    assert backend["environment"]["ATTNLENS_API__WORKER_URL"] == "http://worker:8001"
    # both listen beyond loopback: compose must refuse to start without the shared token (`${VAR:?...}`)
    for service in (backend, worker):
        assert service["environment"]["ATTNLENS_API__TOKEN"].startswith(TOKEN_REQUIRED)
    assert worker["command"][:5] == ["python", "-m", "worker", "worker", "serve"]
    assert (
        "--port" in worker["command"] and worker["command"][worker["command"].index("--port") + 1] == "8001"
    )
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert set(services["postgres"]["profiles"]) == {"postgres", "ray"}
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


def test_ray_profile_adds_its_services_and_leaves_the_default_alone():
    for name in RAY_SERVICES:
        assert SERVICES[name]["profiles"] == ["ray"], name
        assert SERVICES[name]["build"]["dockerfile"] == "docker/Dockerfile", name
    assert set(_ray_db_services()) == RAY_SERVICES
    # a profile on these would change what a plain `docker compose up` starts
    for name in ("backend", "worker"):
        assert "profiles" not in SERVICES[name], name


def test_every_attnlens_service_requires_the_token():
    # each listens beyond loopback inside the network (the Ray nodes on Ray's ports)
    built = [name for name, service in SERVICES.items() if "build" in service]
    assert set(built) == {"backend", "worker"} | RAY_SERVICES
    for name in built:
        assert SERVICES[name]["environment"]["ATTNLENS_API__TOKEN"].startswith(TOKEN_REQUIRED), name


def test_ray_head_starts_a_head_on_6379_that_blocks():
    command = SERVICES["ray-head"]["command"]
    assert command[:3] == ["ray", "start", "--head"]
    assert _flag(command, "--port") == "6379"
    assert "--block" in command  # `ray start` returns at once without it, and the container would stop
    assert _flag(command, "--num-gpus") == "0"  # the GPUs belong to the workers' actors
    # bound to every interface inside the container, so the loopback-published port reaches it
    assert _flag(command, "--dashboard-host") == "0.0.0.0"


def test_ray_worker_joins_the_head_and_reserves_a_gpu():
    worker, head = SERVICES["ray-worker"], SERVICES["ray-head"]
    command = worker["command"]
    assert command[:2] == ["ray", "start"] and "--head" not in command and "--block" in command
    address = _default_of(_flag(command, "--address"), "RAY_HEAD_ADDRESS")
    assert address == f"ray-head:{_flag(head['command'], '--port')}"
    device = worker["deploy"]["resources"]["reservations"]["devices"][0]
    served = SERVICES["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == served["driver"] == "nvidia"
    assert device["capabilities"] == served["capabilities"] == ["gpu"]
    assert int(_default_of(device["count"], "RAY_WORKER_GPUS")) == served["count"] == 1
    # `--scale ray-worker=N` needs replicas that claim no fixed name or host port
    assert "container_name" not in worker and "ports" not in worker
    assert worker["depends_on"]["ray-head"]["condition"] == "service_started"


def test_ray_profile_shares_one_postgres_database():
    services = _ray_db_services()
    urls = {name: s["environment"]["ATTNLENS_DB__URL"] for name, s in services.items()}
    assert len(set(urls.values())) == 1, urls  # the job rows the Jobs page shows are the driver's
    text = next(iter(urls.values()))
    assert COMPOSE_TEXT.count(text) == 1  # one YAML anchor, not copies that could drift apart
    url, postgres = make_url(text), SERVICES["postgres"]["environment"]
    assert url.drivername == "postgresql+psycopg"  # psycopg 3, the `postgres` extra
    assert url.host == "postgres" and url.port == 5432
    assert (url.username, url.password, url.database) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    for name, service in services.items():
        assert service["environment"]["ATTNLENS_DATA_DIR"] == "/data", name
        assert "attnlens-data:/data" in service["volumes"], name
    # backend-ray looks clusters and maps up by the model's name: the build's actors must agree with it
    models = {n: s["environment"]["ATTNLENS_MODEL__NAME"] for n, s in SERVICES.items() if "build" in s}
    assert len(set(models.values())) == 1, models


def test_postgres_is_healthchecked_and_awaited():
    postgres = SERVICES["postgres"]
    check = postgres["healthcheck"]["test"]
    assert check[:2] == ["CMD", "pg_isready"]
    assert _after(check, "-U") == postgres["environment"]["POSTGRES_USER"]
    assert _after(check, "-d") == postgres["environment"]["POSTGRES_DB"]
    for name, service in _ray_db_services().items():
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name


def test_ray_nodes_keep_the_object_store_in_shared_memory():
    # Ray falls back to a disk-backed store when /dev/shm (64 MB by default in Docker) is smaller
    for name in ("ray-head", "ray-worker"):
        service = SERVICES[name]
        assert "shm_size" in service, name
        store = int(_flag(service["command"], "--object-store-memory"))
        assert 0 < store < _bytes(service["shm_size"]), name


def test_published_ports_are_loopback_only_and_distinct():
    host_ports = []
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
            host_ports.append(port.split(":")[1])
    assert len(host_ports) == len(set(host_ports)), host_ports  # backend and backend-ray can run together
    assert SERVICES["ray-head"]["ports"] == ["127.0.0.1:8265:8265", "127.0.0.1:10001:10001"]


def test_backend_ray_serves_the_postgres_atlas():
    service = SERVICES["backend-ray"]
    env = service["environment"]
    assert service["command"] == ["python", "-m", "backend"]
    assert env["ATTNLENS_API__HOST"] == "0.0.0.0"
    assert service["ports"] == [f"127.0.0.1:8001:{env['ATTNLENS_API__PORT']}"]
    # a worker service it calls runs its jobs, so it must share its database (`worker` has SQLite)
    if worker_url := env.get("ATTNLENS_API__WORKER_URL"):
        worker = SERVICES[urlparse(worker_url).hostname]
        assert worker["environment"].get("ATTNLENS_DB__URL") == env["ATTNLENS_DB__URL"]


def test_atlas_build_accepts_the_options_the_readme_uses():
    words = shlex.split(RAY_BUILD)
    assert words[:4] == ["docker", "compose", "exec", "ray-head"] and words[3] in SERVICES
    assert words[4:7] == ["attnlens", "atlas", "build"]
    corpus = _after(words, "--corpus")
    assert corpus.startswith(SERVICES["ray-head"]["environment"]["ATTNLENS_DATA_DIR"] + "/")
    result = CliRunner().invoke(cli_app, ["atlas", "build", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # rich styles the help (and splits option names with colour codes where a terminal is forced)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    known = set(re.findall(r"--[a-z][a-z-]*", plain))
    wanted = {w for w in words if w.startswith("--")} | {"--model"}
    assert wanted <= known, sorted(wanted - known)
