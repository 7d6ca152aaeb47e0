"""`attnlens models`: the known presets, their model family (FIM or left-to-right) and whether each loads
offline."""

from __future__ import annotations

import typer

from attnlens.cli.common import settings_of


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models(ctx: typer.Context) -> None:
        """List model presets, their family and FIM support, and whether each is available offline."""
        from attnlens.contracts.models import MODEL_FAMILIES, PRESETS
        from attnlens.model.presets import availability

        settings = settings_of(ctx)
        rows = []
        for preset in PRESETS.values():
            ok, how = availability(preset, settings.models_dir / "hub")
            supports_fim = MODEL_FAMILIES[preset.family].supports_fim
            rows.append(
                (
                    preset.name,
                    "yes" if ok else "no",
                    preset.family,
                    "yes" if supports_fim else "no",
                    how,
                    preset.description,
                )
            )
        width = max(len(r[0]) for r in rows)
        family_width = max(len("family"), *(len(r[2]) for r in rows))
        typer.echo(f"{'preset':<{width}}  offline  {'family':<{family_width}}  FIM  how / description")
        indent = " " * (width + family_width + 18)
        for name, offline, family, fim, how, description in rows:
            typer.echo(
                f"{name:<{width}}  {offline:<7}  {family:<{family_width}}  {fim:<3}  {how}\n"
                f"{indent}{description}"
            )
        typer.echo(
            "\nAny Hugging Face id or local folder also works: attnlens serve --model bigcode/starcoder2-3b"
        )
        typer.echo(
            "Its family is detected from the tokenizer's FIM markers; families: "
            + ", ".join(
                f"{f.name} ({'FIM' if f.supports_fim else 'left-to-right'})" for f in MODEL_FAMILIES.values()
            )
        )
