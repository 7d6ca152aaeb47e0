"""Migrations build exactly the ORM schema.

SQLite runs with WAL and foreign keys; old schemas never pass silently."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from attnlens.errors import DatabaseSchemaOutdated
from attnlens.store import open_store
from attnlens.store.base import Base
from attnlens.store.migrate import current_revision, head_revision
from attnlens.store.models import CorpusFile, Inference, Scenario


def test_migrations_from_empty_produce_the_orm_schema(settings):
    store = open_store(settings)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    assert current_revision(store.engine) == head_revision()


def test_sqlite_runs_with_wal_and_foreign_keys(settings):
    store = open_store(settings)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA page_size").scalar() == 16384
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Inference(scenario_id=12345, model_name="m"))


def test_open_store_creates_the_data_dir_and_sqlite_file(settings):
    assert not settings.data_dir.exists()
    open_store(settings)
    assert (settings.data_dir / "attnlens.db").is_file()


def test_empty_database_without_migration_raises_naming_the_command(settings):
    with pytest.raises(DatabaseSchemaOutdated, match="attnlens db upgrade"):
        open_store(settings, migrate=False)


def test_database_from_a_newer_attnlens_is_refused(settings):
    store = open_store(settings)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffffdeadbeef'"))
    for migrate in (False, True):
        with pytest.raises(DatabaseSchemaOutdated, match="newer version"):
            open_store(settings, migrate=migrate)


def test_downgrade_then_upgrade_keeps_working(settings):
    store = open_store(settings)
    upgrade_head = head_revision()
    from alembic import command

    from attnlens.store.migrate import alembic_config

    with store.engine.connect() as connection, connection.begin():
        command.downgrade(alembic_config(connection), "base")
    assert current_revision(store.engine) is None
    with pytest.raises(DatabaseSchemaOutdated, match="empty database"):
        open_store(settings, migrate=False)
    store = open_store(settings)
    assert current_revision(store.engine) == upgrade_head


def test_session_commits_on_success_and_rolls_back_on_error(settings):
    store = open_store(settings)
    with store.session() as session:
        session.add(CorpusFile(corpus="c", path="A.java", sha256="a" * 64, n_bytes=1))
    with pytest.raises(RuntimeError), store.session() as session:
        session.add(CorpusFile(corpus="c", path="B.java", sha256="b" * 64, n_bytes=1))
        session.flush()
        raise RuntimeError("boom")
    with store.session() as session:
        assert [f.path for f in session.query(CorpusFile).order_by(CorpusFile.id)] == ["A.java"]


def test_timestamps_come_back_as_utc(settings):
    store = open_store(settings)
    with store.session() as session:
        session.add(CorpusFile(corpus="c", path="A.java", sha256="a" * 64, n_bytes=1))
    with store.session() as session:
        stamp = session.query(CorpusFile).one().created_at
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0


def test_deleting_a_corpus_file_cascades_to_its_scenarios(settings):
    store = open_store(settings)
    with store.session() as session:
        f = CorpusFile(corpus="c", path="A.java", sha256="a" * 64, n_bytes=1)
        session.add(f)
        session.flush()
        session.add(
            Scenario(
                corpus_file_id=f.id,
                model_name="m",
                task="t",
                node_type="n",
                mode="l2r",
                hole_start=0,
                hole_end=1,
                target_text="x",
                target_ids=b"",
                prompt_ids=b"",
                context_tokens=1,
                n_prefix_tokens=1,
                n_suffix_tokens=0,
                seed=0,
                alignment="none",
            )
        )
    with store.session() as session:
        session.delete(session.query(CorpusFile).one())
    with store.session() as session:
        assert session.query(Scenario).count() == 0
