"""The store on PostgreSQL (what several machines share): migrations, idempotent writes, exclusive job
claims across processes, filters and the index check. Runs on a throwaway server started from the
`initdb`/`pg_ctl` on PATH, or on ATTNLENS_TEST_POSTGRES_URL (a server database the test may fill)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from attnlens.config import Settings
from attnlens.index import PatternIndex
from attnlens.store import open_store, save_scenarios
from attnlens.store.base import Base
from attnlens.store.jobs import claim_job, enqueue_job, finish_job, list_jobs
from attnlens.store.patterns import PatternFilter, matching_pattern_ids
from tests.store.fake_atlas import fill_atlas
from tests.store.test_jobs import _claim_all
from tests.store.test_scenarios import make_scenarios

pytestmark = pytest.mark.slow
PORT = 54329


def postgres_bin() -> Path | None:
    """The folder of `initdb` and `pg_ctl`: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    if (found := shutil.which("initdb")) and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _throwaway_server(folder: Path) -> str:
    """Start a PostgreSQL server for this test session in `folder`; returns its base URL."""
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # postgres refuses root
    if as_user:
        shutil.chown(folder, user="postgres")
    data = folder / "data"
    bin_dir = postgres_bin()
    assert bin_dir is not None
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "attnlens"],
        check=True,
        capture_output=True,
    )
    options = f"-p {PORT} -k {folder} -c listen_addresses='' -c fsync=off"
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )
    return f"postgresql+psycopg://attnlens@/postgres?host={folder}&port={PORT}"


@pytest.fixture(scope="module")
def server_url():
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')")
    if url := os.environ.get("ATTNLENS_TEST_POSTGRES_URL"):
        yield url
        return
    if postgres_bin() is None:
        pytest.skip(
            "no PostgreSQL: install postgresql (`make test` does, as root) or set ATTNLENS_TEST_POSTGRES_URL"
        )
    folder = Path(tempfile.mkdtemp(prefix="attnlens-pg-"))
    url = _throwaway_server(folder)
    yield url
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    pg_ctl = str((postgres_bin() or Path()) / "pg_ctl")
    stop = [*as_user, pg_ctl, "-D", str(folder / "data"), "-m", "immediate", "stop"]
    subprocess.run(stop, capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_settings(server_url, tmp_path) -> Settings:
    """Settings on a fresh, empty database of the server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base, _, query = server_url.partition("?")
    return Settings(data_dir=tmp_path / "data", db={"url": f"{base.rsplit('/', 1)[0]}/{name}?{query}"})


def test_postgres_migrations_produce_the_orm_schema(pg_settings):
    store = open_store(pg_settings)
    assert store.engine.dialect.name == "postgresql"
    with store.engine.connect() as connection:
        assert (
            compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
            )
            == []
        )


def test_postgres_save_scenarios_is_idempotent(pg_settings):
    store = open_store(pg_settings)
    with store.session() as session:
        first = save_scenarios(session, make_scenarios(), model_name="smollm2")
    with store.session() as session:
        assert save_scenarios(session, make_scenarios(), model_name="smollm2") == first


def test_postgres_job_claims_are_exclusive_across_processes(pg_settings):
    store = open_store(pg_settings)
    ids = [enqueue_job(store, "mine") for _ in range(40)]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [
        context.Process(target=_claim_all, args=(pg_settings.database_url, f"w{i}", results))
        for i in range(4)
    ]
    for process in workers:
        process.start()
    claimed = [results.get(timeout=60) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sorted(job_id for _, jobs in claimed for job_id in jobs) == ids
    assert {job.state for job in list_jobs(store)} == {"succeeded"}
    assert claim_job(store, "late") is None
    job_id = enqueue_job(store, "cluster")
    assert claim_job(store, "w", kinds=["cluster"]).id == job_id
    assert finish_job(store, job_id, "w").state == "succeeded"


def test_postgres_filters_and_index_check(pg_settings):
    store = open_store(pg_settings)
    atlas = fill_atlas(store, n_inferences=12)
    with store.session() as session:
        allowed = matching_pattern_ids(session, PatternFilter(task="identifier", first_token_correct=True))
    expected = atlas.pattern_ids[(atlas.tasks == "identifier") & atlas.correct]
    assert np.array_equal(allowed, np.sort(expected))
    index = PatternIndex.open(pg_settings, store)
    index.rebuild_from_db(store)
    report = index.check(store)
    assert report.ok, report.summary()


def test_postgres_upgrade_from_the_initial_schema_backfills_pasted_sources(pg_settings):
    from attnlens.store.engine import make_engine
    from tests.store.test_schema import check_backfilled_sources, fill_initial_schema

    engine = make_engine(pg_settings.database_url)
    ids = fill_initial_schema(engine)
    engine.dispose()
    check_backfilled_sources(pg_settings, ids)
