"""Alembic environment: runs on the connection `attnlens.store.migrate` hands over.

The `alembic` command line also works from the repository root for writing new revisions:
    alembic -c src/attnlens/store/migrations/alembic.ini revision --autogenerate -m "slug"
with ATTNLENS_DB__URL (or the default SQLite file) as the database to compare against.
"""

from __future__ import annotations

from alembic import context

from attnlens.store import models  # noqa: F401  (registers every table on the metadata)
from attnlens.store.base import Base

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from attnlens.config import Settings
    from attnlens.store.engine import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or Settings().database_url)
    with engine.connect() as new_connection:
        _run(new_connection)
        new_connection.commit()
