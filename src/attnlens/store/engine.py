"""Engines, sessions and the `Store` handle: SQLite with WAL and foreign keys by default, any URL works."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from attnlens.config import Settings
from attnlens.errors import StorageUnavailable

log = logging.getLogger(__name__)

# How long a SQLite connection waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_S = 30.0
SQLITE_PAGE_SIZE = 16384
_BEGIN_OPTION = "attnlens_sqlite_begin"


def make_engine(url: str) -> Engine:
    """An engine for `url`. For SQLite: WAL journal, foreign keys enforced, a busy timeout, and real
    transactions (Python's sqlite3 otherwise runs DDL outside any transaction and starts transactions
    lazily, which breaks atomic migrations and read-then-write isolation)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    _configure_sqlite(engine, in_memory=not database or database == ":memory:")
    return engine


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                # Only takes effect in a new, empty file (WAL fixes the page size afterwards). A head pattern
                # row is about 850 bytes: 4 KiB pages hold 4 of them and waste 15%, 16 KiB pages waste 1%
                # (docs/benchmarks.md, "Store and index").
                cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
                cursor.execute("PRAGMA journal_mode=WAL")
                # With WAL, NORMAL is durable against application crashes and much faster than FULL.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock at once, so a read-then-write transaction cannot fail
        # half-way because another process wrote in between (see Store.session(immediate=True)).
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Store:
    """The database of one atlas. Build it with `open_store(settings)`."""

    def __init__(self, engine: Engine, settings: Settings | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._immediate_sessions = sessionmaker(
            bind=engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, immediate: bool = False) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back when it raises.

        `immediate=True` (SQLite only; ignored elsewhere) takes the write lock when the transaction starts:
        use it for read-then-write work that several processes may run at once.
        """
        factory = self._immediate_sessions if immediate and self.is_sqlite else self._sessions
        session = factory()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            _roll_back_after_failure(session)
            if (reason := storage_failure(exc)) is None:
                raise
            raise StorageUnavailable(
                f"the database ({self}) cannot be written: {reason}. Nothing of this change was kept. Free "
                "space on its disk or make it writable, then try again."
            ) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"


# What SQLite and PostgreSQL say when the storage, not the statement, is at fault.
_STORAGE_FAILURES = {
    "database or disk is full": "the disk is full",
    "disk i/o error": "the disk refused a write (full, over a size limit, or failing)",
    "readonly database": "it is read-only",
    "unable to open database file": "its file cannot be opened (read-only folder, or missing permissions)",
    "no space left on device": "the disk is full",
    "could not extend file": "the disk is full",
    "read-only transaction": "it is read-only",
}


def storage_failure(exc: BaseException) -> str | None:
    """Why the storage failed, in words, if `exc` says it did (None for any other database error)."""
    text = str(getattr(exc, "orig", exc)).lower()
    return next((why for said, why in _STORAGE_FAILURES.items() if said in text), None)


def _roll_back_after_failure(session: Session) -> None:
    try:
        session.rollback()
    except OperationalError:  # the connection may be unusable after an I/O error; closing discards it
        log.warning("rollback after a storage failure failed too; the connection is discarded")


def check_writable(folder: Path) -> None:
    """Raise `StorageUnavailable` unless files can be created in `folder` (created if missing)."""
    probe = folder / f".write-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"attnlens")
        probe.unlink()
    except OSError as exc:
        raise StorageUnavailable(
            f"the data dir {folder} is not writable ({exc.strerror or exc}): attnlens keeps its database, "
            "index and model caches there. Make it writable, free space on its disk, or point "
            "ATTNLENS_DATA_DIR (--data-dir) at another folder."
        ) from exc


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Open the atlas database named by `settings`, creating the data dir.

    With `migrate=True` (what the CLI and the app do at start) an empty or older database is upgraded to
    the code's schema; with `migrate=False` an older one raises `DatabaseSchemaOutdated` naming the command.
    """
    from attnlens.store.migrate import ensure_schema

    check_writable(settings.data_dir)
    store = Store(make_engine(settings.database_url), settings)
    try:
        ensure_schema(store.engine, migrate=migrate)
    except OperationalError as exc:
        store.dispose()
        if (reason := storage_failure(exc)) is None:
            raise
        raise StorageUnavailable(f"the database ({store}) cannot be opened for writing: {reason}.") from exc
    except BaseException:
        store.dispose()
        raise
    return store
