"""Schema versions with Alembic. The migration scripts ship inside the package, so an installed attnlens
can migrate its own databases; nothing here needs an alembic.ini.

A database is never used silently with an older schema: `ensure_schema` upgrades it or raises
`DatabaseSchemaOutdated` naming the command to run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine

from attnlens.errors import DatabaseSchemaOutdated

# Alembic announces each of its plugins at INFO when it is imported; nobody needs those lines.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "attnlens db upgrade"


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    # Alembic logs a dozen INFO lines per command ("setup plugin ..."); ours says what happened instead.
    logger = logging.getLogger("alembic")
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for our scripts; `connection` (if given) is the one migrations run on."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Revision files are named by date and slug, so they list in the order they were written.
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migration scripts have {len(heads)} heads; merge them (alembic merge)")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    """The revision stamped in the database, or None for a database that Alembic never touched."""
    with _quiet_alembic(), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _is_known(revision: str) -> bool:
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except Exception:  # alembic raises several types for unknown ids
        return False
    return True


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to `revision` in one transaction."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations copy and drop tables; with foreign keys on, the drop would cascade into
            # child rows. The pragma is ignored inside a transaction, so it goes to the driver directly.
            _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")
        try:
            with _quiet_alembic(), connection.begin():
                command.upgrade(alembic_config(connection), revision)
        finally:
            if sqlite:
                _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")


def _sqlite_pragma(connection: Connection, statement: str) -> None:
    # Outside SQLAlchemy's transaction (the driver runs in autocommit mode, see engine.make_engine).
    connection.connection.dbapi_connection.execute(statement)  # type: ignore[union-attr]


def ensure_schema(engine: Engine, *, migrate: bool) -> None:
    """Make sure the database's schema is the code's: upgrade it (`migrate=True`) or raise."""
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    if current is not None and not _is_known(current):
        raise DatabaseSchemaOutdated(
            f"the database is at schema revision {current}, which this attnlens does not know: it was "
            "written by a newer version. Upgrade attnlens, or point ATTNLENS_DB__URL at another database."
        )
    if not migrate:
        where = "an empty database" if current is None else f"schema revision {current}"
        raise DatabaseSchemaOutdated(
            f"the database is at {where}, older than this code's {head}; run `{UPGRADE_COMMAND}` "
            "(it keeps the data)."
        )
    log.info("migrating database from %s to %s", current or "empty", head)
    upgrade(engine)
