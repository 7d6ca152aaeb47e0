"""Shared CLI plumbing: building Settings from flags, printing errors plainly."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from attnlens.config import Settings
from attnlens.errors import AttnLensError
from attnlens.logs import configure_logging


def build_settings(*, data_dir: Path | None, log_level: str | None) -> Settings:
    settings = Settings().with_overrides(data_dir=data_dir, log_level=log_level)
    configure_logging(settings.log_level)
    return settings


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj


def run(app: typer.Typer, argv: list[str] | None) -> None:
    try:
        app(args=argv, standalone_mode=True)
    except AttnLensError as exc:
        typer.secho(f"error: {exc.message}", err=True, fg=typer.colors.RED)
        sys.exit(2)
