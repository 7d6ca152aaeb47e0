"""The `train_predictors` job: per task (and the `noise` control), every registered predictor kind
cross-validated (`PredictorEvaluation`) and refitted on every row (`Predictor.blob`), on the latest
finished clustering.

The stored `PredictorEvaluation.details` carry everything the report and the analyze view show: the
out-of-fold accuracy's fold values, the majority-class rate ("chance"), ROC AUC, the reliability table,
the shuffled-label control, the boosting rounds, and the final model's per-head SHAP importances (mean
|SHAP| and signed mean over the training rows). The predictor's `parameters` record `window_tokens`, the
median prompt length of its rows: a prediction for a new input says whether its accuracy applies to an input
of that input's length (`attnlens.atlas.prediction`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from attnlens.atlas.clustering import model_of
from attnlens.atlas.jobs import JobContext
from attnlens.atlas.predictor_baselines import baseline_details
from attnlens.contracts.job_parameters import predictor_parameters as predictor_parameters  # re-exported
from attnlens.contracts.tasks import NOISE_TASK
from attnlens.errors import InsufficientData
from attnlens.store.analyses import latest_clustering
from attnlens.store.analysis_rows import (
    Selection,
    TaskRows,
    load_task_rows,
    predictors_of_job,
    save_predictor,
    selected_heads,
    task_names,
)
from attnlens.store.models import Predictor, PredictorEvaluation

# Decimals kept of each head's importance in the stored details (all heads: 270 for SmolLM2, 1920 for 15B).
_ROUND = 6
PREDICTOR_SETTINGS = {
    "seed", "predictor_iterations", "predictor_depth", "predictor_learning_rate", "predictor_early_stopping",
    "predictor_eval_fraction", "predictor_pca_components", "cv_folds",
}  # fmt: skip


def _interval(interval: Any) -> dict[str, float]:
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}


def evaluation_details(evaluation: Any, shap: Any) -> dict[str, Any]:
    """JSON-ready details of an `analysis.PredictorEvaluation` and the final model's SHAP (`HeadShap`)."""
    control = evaluation.shuffled_control
    mean_abs = shap.mean_abs_per_head()
    signed = shap.mean_per_head()
    order = sorted(mean_abs, key=lambda ref: -mean_abs[ref])
    return {
        "n_correct": evaluation.n_correct,
        "chance": evaluation.majority_rate,
        "fold_accuracies": evaluation.fold_accuracies,
        "roc_auc": evaluation.roc_auc,
        "reliability": [asdict(b) for b in evaluation.reliability],
        "rounds": evaluation.rounds,
        "shuffled_control": None
        if control is None
        else {"accuracy": _interval(control.accuracy), "brier": control.brier, "roc_auc": control.roc_auc},
        "expected_value": shap.expected_value,
        "head_importance": [
            {
                "name": ref.name,
                "mean_abs_shap": round(mean_abs[ref], _ROUND),
                "mean_shap": round(signed[ref], _ROUND),
            }
            for ref in order
        ],
    }


def window_tokens(rows: TaskRows) -> int | None:
    """The window length the predictor is trained on: the median prompt length of its rows (mining makes
    every prompt of an atlas exactly `context_tokens` long); None when the rows do not say."""
    if len(rows.context_tokens) == 0:
        return None
    return int(np.median(rows.context_tokens))


def features_of(rows: TaskRows, kind: str) -> np.ndarray:
    """The predictor input of `kind`: (rows, head) cluster ids or (rows, head, dim) embeddings."""
    from attnlens.analysis import predictor_kind

    return rows.cluster_ids if predictor_kind(kind).spec.features == "cluster_ids" else rows.embeddings


def evaluate_and_store(
    ctx: JobContext, rows: TaskRows, kind: str, clustering_id: int, model_name: str
) -> dict[str, Any]:
    """Cross-validate `kind` on the task's rows, fit the final model on all of them, store both rows;
    returns a summary. Raises `InsufficientData` when a class is too small for the folds."""
    from attnlens.analysis import (
        cross_validate_predictor,
        head_shap_values,
        predictor_to_bytes,
        train_final_predictor,
    )

    settings = ctx.settings.analysis
    features = features_of(rows, kind)
    evaluation = cross_validate_predictor(kind, features, rows.correct, rows.heads, settings)
    final = train_final_predictor(kind, features, rows.correct, rows.heads, settings, evaluation=evaluation)
    details = evaluation_details(evaluation, head_shap_values(final, features))
    details["baselines"] = baseline_details(rows, kind, features, evaluation, settings)
    parameters = {
        "label": "alternating (noise control)" if rows.task == NOISE_TASK else "first_token_correct",
        "rows_dropped": rows.dropped,
        "window_tokens": window_tokens(rows),
        "final_rounds": evaluation.final_rounds,
        **settings.model_dump(include=PREDICTOR_SETTINGS),
    }
    predictor = Predictor(
        name=f"{model_name}/{rows.task}/{kind}",
        kind=kind,
        model_name=model_name,
        task=rows.task,
        clustering_id=clustering_id,
        parameters=parameters,
        n_train=len(rows.correct),
        blob=predictor_to_bytes(final),
        job_id=ctx.job.id,
    )
    stored = PredictorEvaluation(
        n_rows=evaluation.n_rows,
        folds=evaluation.folds,
        accuracy=evaluation.accuracy.estimate,
        accuracy_low=evaluation.accuracy.low,
        accuracy_high=evaluation.accuracy.high,
        brier=evaluation.brier,
        calibration_error=evaluation.calibration_error,
        details=details,
    )
    predictor_id = save_predictor(ctx.store, predictor, stored)
    return trained_summary(predictor_id, rows.task, kind, stored)


def trained_summary(
    predictor_id: int, task: str, kind: str, evaluation: PredictorEvaluation
) -> dict[str, Any]:
    """What the job's result says of one trained predictor, from its stored evaluation (so that a resumed
    job reports the predictors an earlier attempt stored exactly as it reports its own)."""
    control = evaluation.details.get("shuffled_control")
    return {
        "predictor_id": predictor_id,
        "task": task,
        "kind": kind,
        "n": evaluation.n_rows,
        "accuracy": round(evaluation.accuracy, 4),
        "accuracy_ci": [round(evaluation.accuracy_low, 4), round(evaluation.accuracy_high, 4)],
        "chance": round(evaluation.details["chance"], 4),
        "shuffled_accuracy": None if control is None else round(control["accuracy"]["estimate"], 4),
    }


def run_train_predictors(ctx: JobContext) -> dict[str, Any]:
    """Per task: every registered predictor kind, cross-validated and refitted, on the latest clustering."""
    from attnlens.analysis import predictor_kinds

    kinds = predictor_kinds()
    model_name = model_of(ctx)
    clustering = latest_clustering(ctx.store, model_name)
    if clustering is None:
        raise InsufficientData(
            f"model {model_name!r} has no finished clustering; run `attnlens atlas cluster` first."
        )
    selection = Selection(model_name, clustering.embedder)
    with ctx.store.session() as session:
        heads = selected_heads(session, selection)
        available = task_names(session, selection)
    requested = ctx.job.parameters.get("tasks") or available
    tasks = list(
        dict.fromkeys(list(requested) + ([NOISE_TASK] if not ctx.job.parameters.get("tasks") else []))
    )
    total = len(tasks) * len(kinds)
    earlier = {
        (row.task, row.kind): trained_summary(row.predictor_id, row.task, row.kind, row.evaluation)
        for row in predictors_of_job(ctx.store, ctx.job.id)
    }
    trained: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for t, task in enumerate(tasks):
        if ctx.should_stop():
            break
        ctx.progress(t * len(kinds), total, f"loading {task}")
        with ctx.store.session() as session:
            rows = load_task_rows(session, selection, task, clustering.id, heads)
        if len(rows.correct) == 0:
            skipped[task] = f"no inferences of task {task!r} with a known correctness in this clustering."
            continue
        for k, kind in enumerate(kinds):
            if (task, kind) in earlier:  # stored by an attempt of this job that was killed: not again
                trained.append(earlier[task, kind])
                continue
            ctx.progress(t * len(kinds) + k, total, f"{task}: cross-validating {kind}")
            try:
                trained.append(evaluate_and_store(ctx, rows, kind, clustering.id, model_name))
            except InsufficientData as exc:
                skipped[task] = exc.message
                break
    ctx.progress(total, total, "predictors trained")
    return {"clustering_id": clustering.id, "model": model_name, "trained": trained, "skipped": skipped}
