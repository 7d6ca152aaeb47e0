"""`attnlens families`: find the pattern families of a model's atlas in the foreground (a
`pattern_families` job with a progress bar, as `attnlens atlas cluster` runs its job) and print them.

A family is a cluster of one UMAP + HDBSCAN clustering of every head's patterns together; the table gives
each family's size, the labels its members' head-type scores support, the layers it occurs in most, and
the first-token correctness of its members' completions (each completion once) beside the atlas's rate.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from attnlens.cli.common import settings_of

ModelOption = Annotated[
    str | None, typer.Option(help="Target model whose atlas to analyse (default: model.name).")
]


def register(app: typer.Typer) -> None:
    app.command("families")(families)


def _rate(stored: dict[str, Any] | None) -> str:
    if stored is None:
        return "n/a"
    return f"{stored['rate']:.3f} [{stored['low']:.3f}, {stored['high']:.3f}] of {stored['trials']}"


def families_table(ctx: typer.Context, model_name: str) -> str:
    """The newest finished family run of a model as a table (what GET /api/families serves)."""
    from attnlens.contracts.head_scores import head_score
    from attnlens.store import open_store
    from attnlens.store.families import latest_family_run, run_families

    store = open_store(settings_of(ctx))
    run = latest_family_run(store, model_name)
    if run is None:
        return f"no pattern families of {model_name} yet; run `attnlens families`."
    p = run.parameters or {}
    with store.session() as session:
        rows = run_families(session, run.id)
    total, noise = int(p.get("patterns", 0)), int(p.get("noise", 0))
    n = total or 1
    lines = [
        f"run {run.id} of {model_name}: {total:,} patterns, fitted on {p.get('fitted_on', 0):,}, "
        f"{len(rows)} families, {noise:,} noise ({noise / n:.1%})",
    ]
    if p.get("reason"):
        lines.append(str(p["reason"]))
    header = (
        f"{'family':>6} {'size':>8} {'share':>6}  {'labels (median)':<40} {'top layers':<24} correct [95% CI]"
    )
    lines += [header, "-" * len(header)]
    for row in rows:
        s = row.summary or {}
        scores = s.get("scores", {})
        labels = ", ".join(
            f"{head_score(name).label} {scores[name]['median']:.2f}" for name in s.get("labels", [])
        )
        layers = sorted(s.get("layers", []), key=lambda pair: -pair[1])[:3]
        top = ", ".join(f"L{layer} {count / row.size:.0%}" for layer, count in layers)
        lines.append(
            f"{row.label:>6} {row.size:>8,} {row.size / n:>6.1%}  {labels or '-':<40} {top:<24} "
            f"{_rate(s.get('correctness'))}"
        )
    lines.append(f"{'atlas':>6} {total:>8,} {'':>6}  {'':<40} {'':<24} {_rate(p.get('atlas_correctness'))}")
    lines.append(
        "correct: first-token correctness of the completions with a member pattern, each completion once "
        f"(control tasks {', '.join(p.get('correctness_leaves_out_tasks', [])) or 'none'} and completions "
        "without a ground truth left out); atlas: the same over every completion (the baseline)."
    )
    return "\n".join(lines)


def families(
    ctx: typer.Context,
    model: ModelOption = None,
    run: Annotated[
        bool, typer.Option("--run/--no-run", help="Run the job first; --no-run prints the newest run only.")
    ] = True,
) -> None:
    """Find the pattern families of the atlas (one UMAP + HDBSCAN over every head's patterns, fitted on
    analysis.family_fit_sample of them, the rest by kNN vote) and print them with their labels."""
    from attnlens.cli.analysis import run_analysis_job
    from attnlens.contracts.job_parameters import analysis_parameters
    from attnlens.contracts.jobs import PATTERN_FAMILIES

    model_name = model or settings_of(ctx).model.name
    if run:
        parameters = analysis_parameters(model, settings_of(ctx).model.name)
        result = run_analysis_job(ctx, PATTERN_FAMILIES, parameters, "pattern")
        typer.echo(json.dumps(result, indent=2, default=str))
    typer.echo(families_table(ctx, model_name))
