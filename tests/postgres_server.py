"""A throwaway PostgreSQL server for the tests that need a shared database, one per test session.

Started from the `initdb`/`pg_ctl` on PATH or in Debian's /usr/lib/postgresql/<version>/bin (`make test`
installs them as root), or taken from ATTNLENS_TEST_POSTGRES_URL (a server database the tests may fill).
Without either, the tests that need it skip, except in CI (`CI` set), where a missing PostgreSQL is a
failure: the shared-store paths must really run there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from attnlens.config import Settings

PORT = 54329


def postgres_bin() -> Path | None:
    """The folder of `initdb` and `pg_ctl`: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    if (found := shutil.which("initdb")) and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # postgres refuses root


def start_server(folder: Path, bin_dir: Path, *, durable: bool = False) -> str:
    """Start a server with its data in `folder`, listening on a socket there only; returns its base URL.
    Tests run it without fsync (nothing to keep); `durable` keeps PostgreSQL's default, for benchmarks."""
    as_user = _as_postgres()
    if as_user:
        shutil.chown(folder, user="postgres")
    data = folder / "data"
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "attnlens"],
        check=True,
        capture_output=True,
    )
    options = f"-p {PORT} -k {folder} -c listen_addresses=''" + ("" if durable else " -c fsync=off")
    start = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log")]
    subprocess.run([*start, "-w", "start"], check=True, capture_output=True)
    return f"postgresql+psycopg://attnlens@/postgres?host={folder}&port={PORT}"


def stop_server(folder: Path, bin_dir: Path) -> None:
    """Stop the server `start_server` started in `folder`, and delete its files."""
    stop = [*_as_postgres(), str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"]
    subprocess.run(stop, capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the PostgreSQL tests, not skip them.")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The base URL of a PostgreSQL server for this test session."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'psycopg[binary]')")
    if url := os.environ.get("ATTNLENS_TEST_POSTGRES_URL"):
        yield url
        return
    bin_dir = postgres_bin()
    if bin_dir is None:
        _unavailable(
            "no PostgreSQL: install postgresql (`make test` does, as root) or set ATTNLENS_TEST_POSTGRES_URL"
        )
        return
    folder = Path(tempfile.mkdtemp(prefix="attnlens-pg-"))
    url = start_server(folder, bin_dir)
    yield url
    stop_server(folder, bin_dir)


def fresh_database(server_url: str) -> str:
    """Create an empty database on the server; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base, _, query = server_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}?{query}"


@pytest.fixture
def pg_settings(postgres_url: str, tmp_path: Path) -> Settings:
    """Settings on a fresh, empty database of the session's server."""
    return Settings(data_dir=tmp_path / "data", db={"url": fresh_database(postgres_url)})
