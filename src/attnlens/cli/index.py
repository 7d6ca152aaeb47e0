"""`attnlens index`: the FAISS indexes of head-pattern embeddings, one per embedding space (rebuild, check,
info)."""

from __future__ import annotations

import shutil
import time

import typer

from attnlens.cli.common import settings_of

index_app = typer.Typer(help="The nearest-neighbour index of pattern embeddings.", no_args_is_help=True)


@index_app.command("rebuild")
def rebuild(ctx: typer.Context) -> None:
    """Rebuild every space's index from the database's embeddings (exact while small, IVF-PQ when large)."""
    from attnlens.errors import StoreError
    from attnlens.index import PatternIndex
    from attnlens.store import open_store

    settings = settings_of(ctx)
    store = open_store(settings)
    started = time.perf_counter()
    try:
        index = PatternIndex.open(settings, store)
    except StoreError:  # an unreadable manifest is what a rebuild is for: start from an empty folder
        shutil.rmtree(settings.index_dir, ignore_errors=True)
        index = PatternIndex.open(settings, store)
    count = index.rebuild_from_db(store, progress=True)
    typer.echo(f"rebuilt {index} from {count} head patterns in {time.perf_counter() - started:.1f} s")


@index_app.command("check")
def check(ctx: typer.Context) -> None:
    """Compare every space's index with the database (spaces, ids on one side only, widths, vectors);
    exit 1 on mismatch."""
    from attnlens.errors import StoreError
    from attnlens.index import PatternIndex
    from attnlens.index.check import IndexCheckReport
    from attnlens.store import open_store

    settings = settings_of(ctx)
    store = open_store(settings)
    try:
        report: IndexCheckReport = PatternIndex.open(settings, store).check(store)
    except StoreError as exc:  # an unreadable manifest is a mismatch too, with its own advice
        typer.echo(f"MISMATCH: {exc.message}")
        raise typer.Exit(1) from exc
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@index_app.command("info")
def info(ctx: typer.Context) -> None:
    """Show each embedding space's index: kind, vectors in the main index and the delta, dimension, files."""
    from attnlens.index import PatternIndex

    settings = settings_of(ctx)
    index = PatternIndex.open(settings)
    typer.echo(f"{index}\nfile size: {index.file_bytes:,} bytes (all spaces)")
    for space in index.spaces():
        held = index.space(space)
        assert held is not None  # listed by the manifest
        main = held.main_path
        main_bytes = main.stat().st_size if main is not None and main.exists() else 0
        delta_bytes = held.delta_path.stat().st_size if held.delta_path.exists() else 0
        typer.echo(
            f"- {space}: {held.kind}, {held.main_count} + {held.delta_count} (delta) vectors, "
            f"dim={held.dim}; main {main.name if main else '-'} {main_bytes:,} bytes, "
            f"delta {delta_bytes:,} bytes"
        )
        if held.needs_rebuild:
            typer.echo(
                f"  more than {settings.index.flat_max_vectors:,} vectors in a flat index: "
                "`attnlens index rebuild`"
            )
    if index.legacy_path.exists():
        typer.echo(f"{index.legacy_path}: an index of the old single-file format; `attnlens index rebuild`")


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")
