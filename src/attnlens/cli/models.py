"""`attnlens models`: the known presets, their model family (FIM or left-to-right) and whether each loads
offline; `attnlens models verify NAME`: whether attention capture, FIM prompts and ablation work on one."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from attnlens.cli.common import settings_of

if TYPE_CHECKING:
    from attnlens.atlas.verify import VerifyReport

# `attnlens models` alone lists the presets (as it did before `verify` existed); subcommands act on one.
models_app = typer.Typer(help="List the model presets; `models verify NAME` checks one model.")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context) -> None:
    """List model presets, their family and FIM support, and whether each is available offline
    (`attnlens models verify NAME` checks one)."""
    if ctx.invoked_subcommand is not None:
        return
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
            f"{name:<{width}}  {offline:<7}  {family:<{family_width}}  {fim:<3}  {how}\n{indent}{description}"
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


@models_app.command("verify")
def verify(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A preset (`attnlens models`), hub id or local folder.")],
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda (default: model.device).")] = None,
    dtype: Annotated[
        str | None, typer.Option(help="auto, float32, bfloat16... (default: model.dtype).")
    ] = None,
    windows: Annotated[int, typer.Option(min=1, max=16, help="Java windows to run.")] = 3,
    tokens: Annotated[int, typer.Option(min=8, help="Tokens per window.")] = 48,
) -> None:
    """Check that attnlens can trust a model: eager attention gives the model's own logits, attention
    rows are causal softmax rows with one pattern per query head, FIM prompts round-trip, and a head
    ablation acts and then leaves no trace. Exit code 1 when a check fails."""
    from attnlens.atlas.verify import verify_model
    from attnlens.model import TargetModel

    settings = settings_of(ctx)
    m = settings.model
    typer.echo(f"loading {name} (weights may take a while to load or convert) ...", err=True)
    started = time.perf_counter()
    target = TargetModel.load(
        name,
        models_dir=settings.models_dir,
        device=device or m.device,
        dtype=dtype or m.dtype,
        revision=m.revision if name == m.name else None,
        attention_tolerance=m.attention_tolerance,
        allow_pickle_weights=m.allow_pickle_weights,
    )
    typer.echo(f"loaded in {time.perf_counter() - started:.1f} s; running the checks ...", err=True)
    report = verify_model(target, n_windows=windows, window_tokens=tokens)
    typer.echo(format_report(report))
    if not report.passed:
        typer.echo(
            f"\n{len(report.failed)} of {len(report.checks)} checks FAILED: do not build atlases or run "
            "ablations with this model until they pass. The detail column says what is wrong; try "
            "another transformers version, or report the model, its transformers version and this table."
        )
        raise typer.Exit(1)
    typer.echo(f"\nall {len(report.checks)} checks passed or were skipped (see the detail column).")


def format_report(report: VerifyReport) -> str:
    """The report as a plain-text table: check, result, measured figure, detail."""
    head = (
        f"{report.model}: {report.architecture}, family {report.family or 'unknown'}, {report.n_layers} "
        f"layers x {report.n_heads} query heads ({report.n_kv_heads} KV), {report.dtype} on {report.device}; "
        f"{report.n_windows} Java windows of {report.window_tokens} tokens"
    )
    rows = [("check", "result", "measured", "detail")]
    rows += [(c.check, c.status, c.measured, c.detail) for c in report.checks]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [head, ""]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        )
    return "\n".join(lines)
