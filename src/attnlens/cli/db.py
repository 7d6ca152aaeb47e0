"""`attnlens db`: the database schema (status and upgrade)."""

from __future__ import annotations

import typer

from attnlens.cli.common import settings_of

db_app = typer.Typer(help="The atlas database: schema version and migrations.", no_args_is_help=True)


@db_app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the database URL, its schema revision and the code's; exit 1 if they differ."""
    from attnlens.store.engine import make_engine
    from attnlens.store.migrate import current_revision, head_revision

    settings = settings_of(ctx)
    engine = make_engine(settings.database_url)
    current, head = current_revision(engine), head_revision()
    engine.dispose()
    typer.echo(f"database: {engine.url.render_as_string(hide_password=True)}")
    typer.echo(f"schema:   {current or 'empty'} (code: {head})")
    if current != head:
        typer.echo("run `attnlens db upgrade` to bring it up to date")
        raise typer.Exit(1)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create the database or migrate it to this code's schema (keeps the data)."""
    from attnlens.store import open_store
    from attnlens.store.migrate import head_revision

    store = open_store(settings_of(ctx), migrate=True)
    store.dispose()
    typer.echo(f"database at schema {head_revision()}: {store}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
