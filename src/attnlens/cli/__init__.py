"""The `attnlens` command line. Each subcommand lives in its own module and registers itself here.

Heavy libraries (torch, transformers, umap) are imported inside commands, so `attnlens --help` is fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attnlens.cli import common

app = typer.Typer(
    name="attnlens",
    help="Explore, search and test the attention heads of code language models (AP-MAE).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="ATTNLENS_DATA_DIR",
            help="Folder for the database, index, model caches and checkpoints (default: ./data).",
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING...")] = None,
) -> None:
    """Global options; every subcommand reads the resulting Settings from the context."""
    ctx.obj = common.build_settings(data_dir=data_dir, log_level=log_level)


def _register() -> None:
    # Every module in this package that defines `register(app)` adds its commands; a new command is a
    # new module, with no edit here.
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; domain errors become one-line messages and exit code 2."""
    common.run(app, argv)
