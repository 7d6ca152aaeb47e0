"""The baselines a predictor's report stands beside (stored in `PredictorEvaluation.details["baselines"]`).

- `confidence`: the model's own confidence at the hole, on the same folds (`analysis.baselines`);
- `balanced`: the attention predictor and the confidence baseline cross-validated again on a balanced
  draw of the rows (equal correct and incorrect, chance 0.5), as the paper evaluates;
- `exact_holes`: the stratified out-of-fold figures restricted to holes that already sat on token
  boundaries (mining widens the others to whole tokens, which changes what some tasks measure;
  docs/tasks.md section 3). Not refitted: the same predictions, on the subset.

Each part is present or carries a `reason` saying why it is absent (rows built before confidence was
stored, a class too small to balance, no exact holes), never a number that does not apply.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attnlens.analysis.baselines import (
    ConfidenceComparison,
    ScoreSummary,
    accuracy_gain,
    balanced_rows,
    compare_with_confidence,
    summarise,
)
from attnlens.analysis.evaluation import PredictorEvaluation, cross_validate_predictor
from attnlens.config import AnalysisSettings
from attnlens.errors import InsufficientData
from attnlens.store.analysis_rows import TaskRows


def _summary(summary: ScoreSummary) -> dict[str, Any]:
    a = summary.accuracy
    return {
        "n_rows": summary.n_rows,
        "accuracy": {"estimate": a.estimate, "low": a.low, "high": a.high},
        "roc_auc": summary.roc_auc,
        "brier": summary.brier,
        "chance": summary.chance,
    }


def _comparison(comparison: ConfidenceComparison) -> dict[str, Any]:
    gain, auc = comparison.accuracy_gain, comparison.auc_gain
    return {
        "confidence": _summary(comparison.confidence),
        "attention_plus_confidence": _summary(comparison.combined),
        "accuracy_gain": {"estimate": gain.estimate, "low": gain.low, "high": gain.high},
        "auc_gain": {"estimate": auc.estimate, "low": auc.low, "high": auc.high},
    }


def _compare(
    y: np.ndarray, attention: np.ndarray, confidence: np.ndarray, settings: AnalysisSettings
) -> ConfidenceComparison:
    return compare_with_confidence(
        y, attention, confidence,
        folds=settings.cv_folds, seed=settings.seed, resamples=settings.bootstrap_resamples,
    )  # fmt: skip


def baseline_details(
    rows: TaskRows,
    kind: str,
    features: np.ndarray,
    evaluation: PredictorEvaluation,
    settings: AnalysisSettings,
) -> dict[str, Any]:
    """JSON-ready baselines of one predictor kind on one task's rows (see the module docstring)."""
    y = np.asarray(rows.correct, dtype=bool)
    attention = evaluation.out_of_fold_probability
    has_confidence = bool(len(rows.confidence)) and bool(np.isfinite(rows.confidence).all())
    stratified: dict[str, Any] = {"attention": _summary(summarise(y, attention))}
    comparison: ConfidenceComparison | None = None
    if has_confidence:
        comparison = _compare(y, attention, rows.confidence, settings)
        stratified.update(_comparison(comparison))
    else:
        missing = int((~np.isfinite(rows.confidence).all(axis=1)).sum()) if len(rows.confidence) else len(y)
        stratified["confidence_missing"] = (
            f"{missing} of {len(y)} rows were built before the model's confidence at the hole was stored; "
            "rebuild the atlas (`attnlens atlas build` into a fresh data dir) to get this baseline."
        )
    out: dict[str, Any] = {"stratified": stratified}
    out["balanced"] = _balanced(rows, kind, features, settings, has_confidence)
    out["exact_holes"] = _exact_holes(rows, attention, comparison, settings)
    return out


def _balanced(
    rows: TaskRows, kind: str, features: np.ndarray, settings: AnalysisSettings, has_confidence: bool
) -> dict[str, Any]:
    y = np.asarray(rows.correct, dtype=bool)
    keep = balanced_rows(y, settings.seed)
    try:
        evaluation = cross_validate_predictor(
            kind, features[keep], y[keep], rows.heads, settings, shuffled_control=False
        )
    except InsufficientData as exc:
        return {"reason": f"too few rows of the rarer class to balance ({len(keep) // 2}): {exc.message}"}
    out: dict[str, Any] = {
        "per_class": len(keep) // 2,
        "attention": _summary(summarise(y[keep], evaluation.out_of_fold_probability)),
    }
    if has_confidence:
        out.update(
            _comparison(
                _compare(y[keep], evaluation.out_of_fold_probability, rows.confidence[keep], settings)
            )
        )
    return out


def _exact_holes(
    rows: TaskRows, attention: np.ndarray, comparison: ConfidenceComparison | None, settings: AnalysisSettings
) -> dict[str, Any]:
    exact = np.asarray(rows.exact_hole, dtype=bool)
    if len(exact) != len(rows.correct) or not exact.any():
        return {
            "reason": "no hole of this task sat on token boundaries (every one was widened or synthetic)."
        }
    y = np.asarray(rows.correct, dtype=bool)[exact]
    out: dict[str, Any] = {
        "fraction": float(exact.mean()),
        "attention": _summary(summarise(y, attention[exact])),
    }
    if comparison is not None:
        out["confidence"] = _summary(summarise(y, comparison.confidence_probability[exact]))
        out["attention_plus_confidence"] = _summary(summarise(y, comparison.combined_probability[exact]))
        gain = accuracy_gain(
            y, comparison.combined_probability[exact], comparison.confidence_probability[exact],
            resamples=settings.bootstrap_resamples, seed=settings.seed,
        )  # fmt: skip
        out["accuracy_gain"] = {"estimate": gain.estimate, "low": gain.low, "high": gain.high}
    else:
        out["confidence_missing"] = "rows built before the model's confidence at the hole was stored."
    return out
