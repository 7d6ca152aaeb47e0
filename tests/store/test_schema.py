"""Migrations build exactly the ORM schema.

SQLite runs with WAL and foreign keys; old schemas never pass silently."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text
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


def fill_initial_schema(engine) -> dict[str, int]:
    """Rows written by the initial schema (revision 0001, before inferences had a source): a mined
    inference, a pasted one (scenario in corpus `pasted`), a paste identical to a mined file (its scenario
    shares that file and is marked by its `pasted` alignment) and an old paste without a scenario, each with
    a head pattern. Returns their inference ids by name."""
    from attnlens.store.base import utc_now
    from attnlens.store.migrate import upgrade

    upgrade(engine, "0001")
    now = utc_now().replace(tzinfo=None)
    ids: dict[str, int] = {}
    with engine.begin() as connection:

        def insert(table: str, **values) -> int:
            columns = ", ".join(values)
            marks = ", ".join(f":{k}" for k in values)
            return connection.execute(
                text(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id"), values
            ).scalar_one()

        files = {
            corpus: insert("corpus_file", corpus=corpus, path=f"{corpus}/A.java", sha256=corpus[0] * 64,
                           n_bytes=10, created_at=now)
            for corpus in ("jdk17", "pasted")
        }  # fmt: skip
        for name, file_corpus, alignment in (
            ("mined", "jdk17", "exact"),
            ("pasted", "pasted", "pasted"),
            ("pasted_in_mined_file", "jdk17", "pasted"),
            ("pasted_without_scenario", None, None),
        ):
            scenario_id = None
            if file_corpus is not None:
                scenario_id = insert(
                    "scenario", corpus_file_id=files[file_corpus], model_name="m", task="identifiers",
                    node_type="identifier", mode="fim", hole_start=len(ids), hole_end=len(ids) + 1,
                    target_text="x", target_ids=b"\x01\x00\x00\x00", prompt_ids=b"\x01\x00\x00\x00",
                    context_tokens=1, n_prefix_tokens=1, n_suffix_tokens=0, seed=0, alignment=alignment,
                    created_at=now,
                )  # fmt: skip
            ids[name] = insert(
                "inference", scenario_id=scenario_id, model_name="m",
                prompt_ids=None if scenario_id else b"\x01\x00\x00\x00", completion_text="x",
                completion_ids=b"", first_token_correct=True, created_at=now,
            )  # fmt: skip
            insert(
                "head_pattern", inference_id=ids[name], layer=0, head=0, embedding=b"\x00\x00",
                thumbnail=b"\x00", thumbnail_size=1, entropy=0.0, diagonal_mass=0.0,
                previous_token_mass=0.0, first_token_mass=0.0, local_mass=0.0,
            )  # fmt: skip
    return ids


def check_backfilled_sources(settings, ids: dict[str, int]) -> None:
    """After the upgrade to head: every row kept, sources backfilled, the analyses' selection mined only,
    and the head patterns still cascade with their inference (the table was rebuilt on SQLite)."""
    from attnlens.store.analysis_rows import choose_selection, iter_selection_embeddings
    from attnlens.store.inferences import delete_pasted_inference
    from attnlens.store.models import HeadPattern

    store = open_store(settings)
    assert current_revision(store.engine) == head_revision()
    with store.session() as session:
        sources = {name: session.get(Inference, i).source for name, i in ids.items()}
        assert sources == {
            "mined": "mined",
            "pasted": "pasted",
            "pasted_in_mined_file": "pasted",
            "pasted_without_scenario": "pasted",
        }
        selection = choose_selection(session, "m")
        (batch,) = list(iter_selection_embeddings(session, selection))
        mined_pattern = session.scalar(select(HeadPattern.id).where(HeadPattern.inference_id == ids["mined"]))
        assert batch[0].tolist() == [mined_pattern]
    delete_pasted_inference(store, ids["pasted"])
    with store.session() as session:
        assert session.scalar(select(HeadPattern.id).where(HeadPattern.inference_id == ids["pasted"])) is None
        assert session.get(Inference, ids["mined"]) is not None
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Inference(scenario_id=None, model_name="m", prompt_ids=b"", source="scraped"))


def test_upgrade_from_the_initial_schema_backfills_pasted_sources(settings):
    """A database made by the initial schema, with pasted code in it, is upgraded in place: each
    inference gets its source (pasted code: `pasted`), and the schema is the ORM's."""
    from attnlens.store.engine import make_engine

    engine = make_engine(settings.database_url)
    ids = fill_initial_schema(engine)
    engine.dispose()
    check_backfilled_sources(settings, ids)
    store = open_store(settings)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
