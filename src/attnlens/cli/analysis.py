"""`attnlens atlas cluster|map` and `attnlens predictors train|report`: analysis jobs in the foreground.

Like `attnlens atlas build`, each command queues a job (or takes over the same job left queued or
orphaned by a killed run) and runs it here with a progress bar, so its result is in the job table too.
The `atlas` commands join the existing `atlas` group (`attnlens.cli.atlas.atlas_app`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from attnlens.cli.atlas import atlas_app
from attnlens.cli.common import run_job_with_progress, settings_of

predictors_app = typer.Typer(
    help="Correctness predictors: train them per task, report their quality.", no_args_is_help=True
)

ModelOption = Annotated[
    str | None, typer.Option(help="Target model whose atlas to analyse (default: model.name).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(predictors_app, name="predictors")


def run_analysis_job(ctx: typer.Context, kind: str, parameters: dict[str, Any], unit: str) -> dict[str, Any]:
    """Queue (or resume) an analysis job and run it here with a progress bar (it needs no model)."""
    from attnlens.store import open_store

    settings = settings_of(ctx)
    return run_job_with_progress(settings, open_store(settings), kind, parameters, None, unit)


@atlas_app.command("cluster")
def cluster(ctx: typer.Context, model: ModelOption = None) -> None:
    """Cluster each head's stored patterns (UMAP + HDBSCAN, settings under ATTNLENS_ANALYSIS__*)."""
    from attnlens.contracts.job_parameters import analysis_parameters
    from attnlens.contracts.jobs import ATLAS_CLUSTER

    parameters = analysis_parameters(model, settings_of(ctx).model.name)
    result = run_analysis_job(ctx, ATLAS_CLUSTER, parameters, "head")
    typer.echo(json.dumps(result, indent=2, default=str))


@atlas_app.command("map")
def cluster_map(ctx: typer.Context, model: ModelOption = None) -> None:
    """Compute the 2-D map of every stored pattern (UMAP fitted on analysis.map_fit_sample points)."""
    from attnlens.contracts.job_parameters import analysis_parameters
    from attnlens.contracts.jobs import ATLAS_MAP

    parameters = analysis_parameters(model, settings_of(ctx).model.name)
    result = run_analysis_job(ctx, ATLAS_MAP, parameters, "point")
    typer.echo(json.dumps(result, indent=2, default=str))


@predictors_app.command("train")
def train(
    ctx: typer.Context,
    tasks: Annotated[
        str | None, typer.Option(help="Comma-separated tasks (default: every task in the atlas, and noise).")
    ] = None,
    model: ModelOption = None,
) -> None:
    """Cross-validate and train every registered predictor kind per task on the latest clustering."""
    from attnlens.contracts.job_parameters import predictor_parameters
    from attnlens.contracts.jobs import TRAIN_PREDICTORS

    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    model_name = model or settings_of(ctx).model.name
    parameters = predictor_parameters(names, model_name)
    result = run_analysis_job(ctx, TRAIN_PREDICTORS, parameters, "step")
    typer.echo(json.dumps(result, indent=2, default=str))
    typer.echo(report_table(ctx, model_name))


def report_table(ctx: typer.Context, model_name: str) -> str:
    """The newest predictor of each (task, kind) as a table.

    Columns: n, accuracy [95% CI], chance, shuffled control, Brier, ECE."""
    from attnlens.store import open_store
    from attnlens.store.analyses import newest_predictors

    rows = newest_predictors(open_store(settings_of(ctx)), model_name)
    if not rows:
        return f"no predictors for {model_name}; run `attnlens predictors train`."
    header = (
        f"{'task':<22} {'kind':<22} {'n':>5} {'accuracy [95% CI]':>22} "
        f"{'chance':>7} {'shuffled':>8} {'Brier':>6} {'ECE':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        predictor, evaluation = row.predictor, row.evaluation
        details = evaluation.details or {}
        control = (details.get("shuffled_control") or {}).get("accuracy", {}).get("estimate")
        calibration_error = evaluation.calibration_error
        accuracy = (
            f"{evaluation.accuracy:.3f} [{evaluation.accuracy_low:.3f}, {evaluation.accuracy_high:.3f}]"
        )
        lines.append(
            f"{predictor.task or 'all':<22} {predictor.kind:<22} {evaluation.n_rows:>5} {accuracy:>22} "
            f"{details.get('chance', float('nan')):>7.3f} "
            f"{control if control is not None else float('nan'):>8.3f} "
            f"{evaluation.brier if evaluation.brier is not None else float('nan'):>6.3f} "
            f"{calibration_error if calibration_error is not None else float('nan'):>6.3f}"
        )
    lines.append(
        "chance: majority-class rate; shuffled: the same CV on permuted labels (should sit near chance)."
    )
    return "\n".join(lines)


@predictors_app.command("report")
def report(ctx: typer.Context, model: ModelOption = None) -> None:
    "Table of the newest predictors: task, kind, n, accuracy [95% CI], chance, shuffled control, Brier, ECE."
    typer.echo(report_table(ctx, model or settings_of(ctx).model.name))
