"""One task, one predictor kind: cross-validate, refit on every row, explain, and store both.

The stored `PredictorEvaluation.details` carry everything the report and the analyze view show: the
out-of-fold accuracy's fold values, the majority-class rate ("chance"), ROC AUC, the reliability table,
the shuffled-label control, CatBoost's rounds, and the final model's per-head SHAP importances (mean |SHAP|
and signed mean over the training rows, head j read from column j: CatBoost's expected value is the LAST
column, which the reference notebook got wrong).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from attnlens.atlas.analysis_data import TaskRows
from attnlens.store.models import Predictor, PredictorEvaluation

# Importances kept per predictor in its evaluation details (all heads: 270 for SmolLM2, 1920 for 15B).
_ROUND = 6


def _interval(interval: Any) -> dict[str, float]:
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}


def evaluation_details(evaluation: Any, shap: Any) -> dict[str, Any]:
    """JSON-ready details of a `PredictorEvaluation` (analysis dataclass) and the final model's SHAP."""
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
        else {
            "accuracy": _interval(control.accuracy),
            "brier": control.brier,
            "roc_auc": control.roc_auc,
        },
        "expected_value": shap.expected_value,
        "head_importance": [
            {"name": ref.name, "mean_abs_shap": round(mean_abs[ref], _ROUND), "mean_shap": round(signed[ref], _ROUND)}
            for ref in order
        ],
    }


def features_of(rows: TaskRows, kind: str) -> Any:
    """The predictor input of `kind`: (rows, head) cluster ids or (rows, head, dim) embeddings."""
    return rows.cluster_ids if kind == "clusters_catboost" else rows.embeddings


def evaluate_and_store(ctx: Any, rows: TaskRows, kind: str, clustering_id: int, model_name: str) -> dict[str, Any]:
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
    shap = head_shap_values(final, features)
    details = evaluation_details(evaluation, shap)
    parameters = {
        "label": "alternating (noise control)" if rows.task == "noise" else "first_token_correct",
        "rows_dropped": rows.dropped,
        "final_rounds": evaluation.final_rounds,
        **settings.model_dump(include={
            "seed", "predictor_iterations", "predictor_depth", "predictor_learning_rate",
            "predictor_early_stopping", "predictor_eval_fraction", "predictor_pca_components", "cv_folds",
        }),
    }  # fmt: skip
    with ctx.store.session() as session:
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
        session.add(predictor)
        session.flush()
        session.add(
            PredictorEvaluation(
                predictor_id=predictor.id,
                n_rows=evaluation.n_rows,
                folds=evaluation.folds,
                accuracy=evaluation.accuracy.estimate,
                accuracy_low=evaluation.accuracy.low,
                accuracy_high=evaluation.accuracy.high,
                brier=evaluation.brier,
                calibration_error=evaluation.calibration_error,
                details=details,
            )
        )
        predictor_id = predictor.id
    return {
        "predictor_id": predictor_id,
        "task": rows.task,
        "kind": kind,
        "n": evaluation.n_rows,
        "accuracy": round(evaluation.accuracy.estimate, 4),
        "accuracy_ci": [round(evaluation.accuracy.low, 4), round(evaluation.accuracy.high, 4)],
        "chance": round(evaluation.majority_rate, 4),
        "shuffled_accuracy": None
        if evaluation.shuffled_control is None
        else round(evaluation.shuffled_control.accuracy.estimate, 4),
    }
