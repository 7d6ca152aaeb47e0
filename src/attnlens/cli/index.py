"""`attnlens index`: the FAISS index of head-pattern embeddings (rebuild, check, info)."""

from __future__ import annotations

import time

import typer

from attnlens.cli.common import settings_of

index_app = typer.Typer(help="The nearest-neighbour index of pattern embeddings.", no_args_is_help=True)


@index_app.command("rebuild")
def rebuild(ctx: typer.Context) -> None:
    """Rebuild the index from the database's embeddings (exact while small, IVF-PQ when large)."""
    from attnlens.errors import StoreError
    from attnlens.index import INDEX_FILENAME, PatternIndex
    from attnlens.store import open_store

    settings = settings_of(ctx)
    store = open_store(settings)
    started = time.perf_counter()
    try:
        index = PatternIndex.open(settings, store)
    except StoreError:  # an unreadable file is what a rebuild is for: start from an empty index
        index = PatternIndex(settings.index_dir / INDEX_FILENAME, settings.index, None, store)
    count = index.rebuild_from_db(store, progress=True)
    typer.echo(f"rebuilt {index} from {count} head patterns in {time.perf_counter() - started:.1f} s")


@index_app.command("check")
def check(ctx: typer.Context) -> None:
    """Compare the index with the database (ids on one side only, dimensions, vectors); exit 1 on mismatch."""
    from attnlens.errors import StoreError
    from attnlens.index import PatternIndex
    from attnlens.index.check import IndexCheckReport
    from attnlens.store import open_store

    settings = settings_of(ctx)
    store = open_store(settings)
    try:
        report: IndexCheckReport = PatternIndex.open(settings, store).check(store)
    except StoreError as exc:  # an unreadable file is a mismatch too, with its own advice
        typer.echo(f"MISMATCH: {exc.message}")
        raise typer.Exit(1) from exc
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@index_app.command("info")
def info(ctx: typer.Context) -> None:
    """Show the index file, its kind, size and dimension."""
    from attnlens.index import PatternIndex

    settings = settings_of(ctx)
    index = PatternIndex.open(settings)
    size = index.path.stat().st_size if index.path.exists() else 0
    typer.echo(f"{index}\nfile size: {size:,} bytes")
    if index.needs_rebuild:
        typer.echo(
            f"more than {settings.index.flat_max_vectors:,} vectors in a flat index: `attnlens index rebuild`"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
