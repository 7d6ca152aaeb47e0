"""`attnlens report`: the paper's five claims measured on this atlas, as Markdown and self-contained HTML.

Runs the `findings_report` job here with a progress bar (its result is in the job table too, which the
app's Findings page shows), then writes the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attnlens.cli.common import run_job_with_progress, settings_of


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Markdown file to write.")] = Path("findings.md"),
    html: Annotated[
        Path | None, typer.Option(help="Self-contained HTML file with figures (default: OUT with .html).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model whose atlas to report on (default: model.name).")
    ] = None,
    checkpoint: Annotated[
        str, typer.Option(help="AP-MAE checkpoint whose reconstruction to measure.")
    ] = "default",
    reconstruction: Annotated[
        bool, typer.Option(help="Measure claim (i) on the checkpoint's test split (about 2 minutes on CPU).")
    ] = True,
    stability_heads: Annotated[
        int,
        typer.Option(
            help="Heads sampled for the two-halves cluster stability (two clusterings each).", min=0
        ),
    ] = 27,
    experiment: Annotated[
        int | None,
        typer.Option(help="Ablation experiment (job id) for the dose curve (default: the newest)."),
    ] = None,
) -> None:
    """Measure the paper's five claims on this atlas; write Markdown and HTML reports."""
    from attnlens.atlas.findings_render import to_html, to_markdown
    from attnlens.contracts.findings import FINDINGS_REPORT, findings_from_result
    from attnlens.store import open_store

    settings = settings_of(ctx)
    parameters = {
        "model": model or settings.model.name,
        "checkpoint": checkpoint,
        "reconstruction": reconstruction,
        "stability_heads": stability_heads,
        "experiment_id": experiment,
    }
    result = run_job_with_progress(
        settings, open_store(settings), FINDINGS_REPORT, parameters, None, "section"
    )
    if result.get("state") != "succeeded":
        typer.echo(f"the report job ended {result.get('state')}: {result.get('error')}", err=True)
        raise typer.Exit(1)
    findings = findings_from_result({k: v for k, v in result.items() if k not in ("job", "state")})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(findings))
    html_path = html or out.with_suffix(".html")
    html_path.write_text(to_html(findings))
    typer.echo(f"wrote {out} and {html_path}")
