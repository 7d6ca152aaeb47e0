"""`attnlens models`: the known presets and whether each loads offline."""

from __future__ import annotations

import typer

from attnlens.cli.common import settings_of


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models(ctx: typer.Context) -> None:
        """List model presets and whether each is available offline."""
        from attnlens.model.presets import PRESETS, availability

        settings = settings_of(ctx)
        rows = []
        for preset in PRESETS.values():
            ok, how = availability(preset, settings.models_dir / "hub")
            rows.append((preset.name, "yes" if ok else "no", how, preset.description))
        width = max(len(r[0]) for r in rows)
        typer.echo(f"{'preset':<{width}}  offline  how / description")
        for name, ok, how, description in rows:
            typer.echo(f"{name:<{width}}  {ok:<7}  {how}\n{'':<{width}}           {description}")
        typer.echo("\nAny Hugging Face id or local folder also works: attnlens serve --model bigcode/starcoder2-3b")
