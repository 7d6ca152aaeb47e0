"""`attnlens experiments run|list`: population ablation experiments from the command line.

`run` queues an `ablation_experiment` job (or takes over the same one left queued or orphaned by a killed
run) and runs it here with a progress bar on the model it loads, like `attnlens atlas build`, so its result
is in the job table beside the ones the app queued.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from attnlens.cli.common import run_job_with_progress, settings_of

experiments_app = typer.Typer(
    help="Population ablation experiments: ablate n heads chosen by a rule over held-out scenarios.",
    no_args_is_help=True,
)
DEFAULT_RULES = "top_positive,top_negative,neutral,random"


def register(app: typer.Typer) -> None:
    app.add_typer(experiments_app, name="experiments")


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _counts(text: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError:
        raise typer.BadParameter(f"head counts must be whole numbers, like 1,2,5,10; got {text!r}.") from None


@experiments_app.command("run")
def run(
    ctx: typer.Context,
    task: Annotated[str, typer.Option(help="Mining task of the held-out scenarios, e.g. identifiers.")],
    corpus: Annotated[
        str, typer.Option(help="Folder of .java files, zip/jar of sources, JSONL, or hf:<dataset>.")
    ],
    rules: Annotated[
        str, typer.Option(help="Comma-separated: top_positive (pos), top_negative (neg), neutral, random.")
    ] = DEFAULT_RULES,
    n: Annotated[str, typer.Option("--n", help="Comma-separated head counts to ablate.")] = "1,2,5,10",
    scenarios: Annotated[int, typer.Option(help="Held-out scenarios to mine and test.", min=2)] = 60,
    balanced: Annotated[
        bool,
        typer.Option(
            "--balanced",
            help="As many scenarios the unablated model gets right as it gets wrong (scenarios // 2 each).",
        ),
    ] = False,
    model: Annotated[
        str | None, typer.Option(help="Target model preset, hub id or folder (default: model.name).")
    ] = None,
    checkpoint: Annotated[
        str | None, typer.Option(help="AP-MAE checkpoint folder (default: the shipped one).")
    ] = None,
    predictor_kind: Annotated[
        str | None, typer.Option(help="Predictor kind whose SHAP values rank heads (default: the best).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of mining, random head choice and bootstrap.", min=0)] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the full result as JSON to this file.")] = None,
) -> None:
    """Ablate heads chosen by each rule, n at a time, over held-out scenarios; print accuracy and flips."""
    from attnlens.contracts.jobs import ABLATION_EXPERIMENT, check_head_counts, experiment_parameters
    from attnlens.service.local import LocalWorker
    from attnlens.store import open_store

    settings = settings_of(ctx)
    if model:
        settings = settings.with_overrides(model={**settings.model.model_dump(), "name": model})
    if checkpoint:
        settings = settings.with_overrides(apmae={**settings.apmae.model_dump(), "checkpoint": checkpoint})
    if predictor_kind is not None:
        from attnlens.analysis import predictor_kind as known_kind

        known_kind(predictor_kind)  # InvalidInput naming the registered kinds, before a model loads
    counts = _counts(n)
    # Stored absolute: the job row outlives this working directory (a worker may take it over).
    where = corpus if corpus.startswith("hf:") else str(Path(corpus).resolve())
    parameters = experiment_parameters(
        task, _names(rules), counts, scenarios, where, seed, balanced=balanced, predictor_kind=predictor_kind
    )
    store = open_store(settings)
    typer.echo(f"loading {settings.model.name} and AP-MAE ({settings.apmae.checkpoint})...")
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    loaded = worker.model
    worker.apmae  # noqa: B018 - raise now, with the reason, if it failed to load
    check_head_counts(counts, loaded.info.n_layers, loaded.info.n_heads, loaded.info.name)
    result = run_job_with_progress(settings, store, ABLATION_EXPERIMENT, parameters, worker, "step")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    typer.echo(result_table(result))
    if out is not None:
        typer.echo(f"result written to {out}")


def _interval(estimate: float, low: float, high: float, spec: str) -> str:
    return f"{estimate:{spec}} [{low:{spec}}, {high:{spec}}]"


def result_table(result: dict[str, Any]) -> str:
    """The baseline and one line per (rule, n): heads ablated, accuracy, change and flips with 95% CIs."""
    lines = [f"job {result['job']}: {result['state']}"]
    if "rows" not in result:  # cancelled before it had a result
        return "\n".join(lines)
    held = "balanced" if result.get("balanced") else "as mined"
    lines.append(
        f"baseline: first-token accuracy {result['baseline_accuracy']:.3f} over {result['scenarios']} "
        f"held-out {result['task']} scenarios ({result.get('n_correct_baseline', '?')} correct, "
        f"{result.get('n_incorrect_baseline', '?')} incorrect; {held})"
    )
    if result.get("balance_shortfall"):
        lines.append(f"short of balanced as asked: {result['balance_shortfall']}")
    if result.get("ranked_by"):
        lines.append(f"ranked by: {result['ranked_by']}")
    header = (
        f"{'rule':<13} {'n':>4} {'heads':>5} {'accuracy [95% CI]':>22} {'change [95% CI]':>25} "
        f"{'i->c [95% CI]':>20} {'c->i [95% CI]':>20}"
    )
    lines += [header, "-" * len(header)]
    for row in result["rows"]:
        lines.append(
            f"{row['rule']:<13} {row['n']:>4} {row['n_heads']:>5} "
            f"{_interval(row['accuracy'], row['accuracy_low'], row['accuracy_high'], '.3f'):>22} "
            f"{_interval(row['change'], row['change_low'], row['change_high'], '+.3f'):>25} "
            f"{_interval(row['i2c'], row['i2c_low'], row['i2c_high'], '.1f'):>20} "
            f"{_interval(row['c2i'], row['c2i_low'], row['c2i_high'], '.1f'):>20}"
        )
    lines.append(
        "i->c / c->i: scenarios that became correct / incorrect when the heads were ablated (counts)."
    )
    return "\n".join(lines)


@experiments_app.command("list")
def list_experiments(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many of the newest experiments to show.", min=1)] = 20,
) -> None:
    """The newest experiments: id, task, state, created, and the baseline of finished ones."""
    from attnlens.contracts.jobs import ABLATION_EXPERIMENT
    from attnlens.store import open_store
    from attnlens.store.jobs import list_jobs

    # The jobs table holds every kind; read a window wide enough that `limit` experiments usually fit.
    jobs = [
        j for j in list_jobs(open_store(settings_of(ctx)), limit=max(1000, 20 * limit))
        if j.kind == ABLATION_EXPERIMENT
    ][:limit]  # fmt: skip
    if not jobs:
        typer.echo("no experiments yet; run `attnlens experiments run` or queue one in the app.")
        return
    header = f"{'id':>5} {'task':<22} {'state':<10} {'created':<20} {'scenarios':>9} {'balanced':<8} baseline"
    typer.echo(header)
    typer.echo("-" * len(header))
    for job in jobs:
        p, r = job.parameters or {}, job.result or {}
        baseline = f"{r['baseline_accuracy']:.3f}" if "baseline_accuracy" in r else ""
        typer.echo(
            f"{job.id:>5} {str(p.get('task', '?')):<22} {job.state:<10} "
            f"{job.created_at:%Y-%m-%d %H:%M:%S}  {r.get('scenarios', p.get('scenarios', '')):>9} "
            f"{'yes' if p.get('balanced') else 'no':<8} {baseline}"
        )
