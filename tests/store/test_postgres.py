"""The store on PostgreSQL (what several machines share): migrations, idempotent writes, exclusive job
claims across processes, filters and the index check, on the session's throwaway server
(`tests.postgres_server`)."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from attnlens.index import PatternIndex
from attnlens.store import open_store, save_scenarios
from attnlens.store.base import Base
from attnlens.store.jobs import claim_job, enqueue_job, finish_job, list_jobs
from attnlens.store.patterns import PatternFilter, matching_pattern_ids
from tests.store.fake_atlas import fill_atlas
from tests.store.test_jobs import _claim_all, check_runners_leave_driven_builds_alone
from tests.store.test_patterns import check_bulk_write_round_trips
from tests.store.test_scenarios import make_scenarios

pytestmark = pytest.mark.slow


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


def test_postgres_runners_leave_driven_builds_alone(pg_settings):
    check_runners_leave_driven_builds_alone(open_store(pg_settings))


def test_postgres_bulk_write_round_trips(pg_settings):
    check_bulk_write_round_trips(open_store(pg_settings))
