"""Honest baselines for correctness predictors: what the model's own confidence already tells.

A model that is unsure at the hole is more often wrong, whatever its heads do; an attention predictor is
only interesting for what it adds to that. Three comparisons, all on out-of-fold probabilities:

- `confidence`: logistic regression on the model's confidence at the hole (top-1 probability, top-1 minus
  top-2 margin, entropy; `mining.hole_confidence`), cross-validated on the SAME stratified folds as the
  attention predictor (same labels, seed and fold count give the same split), so the two are paired;
- `attention + confidence`: the same logistic regression with the attention predictor's out-of-fold
  log-odds as a fourth feature (stacking). A training row's attention log-odds came from a fold model
  that was fitted on rows including the current test rows (never on the row itself): the usual stacking
  compromise, stated rather than hidden;
- `gain`: combined minus confidence, accuracy and ROC AUC, each with a paired percentile-bootstrap 95%
  interval over rows. An interval that covers 0 means attention adds nothing measurable over confidence.

`balanced_rows` draws the paper's balanced evaluation set (equal correct and incorrect rows, chance 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnlens.analysis.stats import Interval, bootstrap_intervals, brier_score, wilson_interval
from attnlens.errors import InsufficientData, InvalidInput

CONFIDENCE_FEATURES = ("top1_prob", "top1_margin", "next_token_entropy")
_EPS = 1e-6


@dataclass(frozen=True)
class ScoreSummary:
    """Quality of one set of out-of-fold probabilities of "correct" on some rows."""

    n_rows: int
    accuracy: Interval  # at threshold 0.5, Wilson 95%
    roc_auc: float | None  # None when the rows hold one class only
    brier: float
    chance: float  # majority-class rate of these rows


@dataclass(frozen=True)
class ConfidenceComparison:
    """The confidence baseline, attention + confidence, and what attention adds, on the same rows."""

    confidence: ScoreSummary
    combined: ScoreSummary
    accuracy_gain: Interval  # combined minus confidence, paired bootstrap over rows
    auc_gain: Interval
    confidence_probability: np.ndarray  # (rows,) out-of-fold, for subsets of these rows
    combined_probability: np.ndarray  # (rows,)


def summarise(y: np.ndarray, probability: np.ndarray) -> ScoreSummary:
    """Accuracy (Wilson), ROC AUC, Brier and majority-class chance of `probability` against `y`."""
    y = np.asarray(y, dtype=bool)
    p = np.asarray(probability, dtype=np.float64)
    if len(y) == 0 or p.shape != y.shape:
        raise InvalidInput(f"need one probability per row, got {p.shape} for {y.shape}.")
    both = 0 < y.sum() < len(y)
    n_correct = int(y.sum())
    return ScoreSummary(
        n_rows=len(y),
        accuracy=wilson_interval(int(np.sum((p >= 0.5) == y)), len(y)),
        roc_auc=_auc(y, p) if both else None,
        brier=brier_score(y, p),
        chance=max(n_correct, len(y) - n_correct) / len(y),
    )


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def out_of_fold_logistic(features: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(rows,) out-of-fold P(correct) of a standardised logistic regression on (rows, f) features, over
    the stratified folds `cross_validate_predictor` uses for the same labels, fold count and seed."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(y, dtype=bool)
    if x.ndim != 2 or len(x) != len(y):
        raise InvalidInput(f"features must be (rows, f) with one row per label, got {x.shape}.")
    if not np.isfinite(x).all():
        raise InvalidInput(
            "confidence features hold NaN or infinite values; rows without them must be dropped."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probability = np.empty(len(y), dtype=np.float64)
    for train, test in splitter.split(np.zeros(len(y)), y):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(x[train], y[train])
        probability[test] = model.predict_proba(x[test])[:, 1]
    return probability


def compare_with_confidence(
    y: np.ndarray,
    attention_probability: np.ndarray,  # (rows,) out-of-fold P(correct) of the attention predictor
    confidence: np.ndarray,  # (rows, 3) CONFIDENCE_FEATURES
    *,
    folds: int,
    seed: int,
    resamples: int,
) -> ConfidenceComparison:
    """The confidence baseline and attention + confidence on the same folds, and the paired gain."""
    y = np.asarray(y, dtype=bool)
    conf = np.asarray(confidence, dtype=np.float64)
    if conf.shape != (len(y), len(CONFIDENCE_FEATURES)):
        raise InvalidInput(f"confidence must be (rows, {len(CONFIDENCE_FEATURES)}), got {conf.shape}.")
    p_att = np.clip(np.asarray(attention_probability, dtype=np.float64), _EPS, 1 - _EPS)
    p_conf = out_of_fold_logistic(conf, y, folds, seed)
    stacked = np.column_stack([conf, np.log(p_att / (1 - p_att))])
    p_comb = out_of_fold_logistic(stacked, y, folds, seed)
    return ConfidenceComparison(
        confidence=summarise(y, p_conf),
        combined=summarise(y, p_comb),
        accuracy_gain=accuracy_gain(y, p_comb, p_conf, resamples=resamples, seed=seed),
        auc_gain=_auc_gain(y, p_comb, p_conf, resamples=resamples, seed=seed),
        confidence_probability=p_conf,
        combined_probability=p_comb,
    )


def accuracy_gain(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, *, resamples: int, seed: int) -> Interval:
    """Accuracy of `p_a` minus accuracy of `p_b` (threshold 0.5) on the same rows, paired percentile
    bootstrap 95% interval over rows."""
    hit_a = ((np.asarray(p_a) >= 0.5) == y).astype(np.float64)
    hit_b = ((np.asarray(p_b) >= 0.5) == y).astype(np.float64)

    def gain(idx: np.ndarray) -> np.ndarray:
        return (hit_a[idx].mean(axis=1) - hit_b[idx].mean(axis=1))[:, None]

    (interval,) = bootstrap_intervals(gain, len(y), resamples=resamples, seed=seed)
    return interval


def _auc_gain(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, *, resamples: int, seed: int) -> Interval:
    """AUC(a) - AUC(b), paired percentile bootstrap over rows (resamples with one class only skipped)."""
    rng = np.random.default_rng(seed)
    point = _auc(y, p_a) - _auc(y, p_b)
    gains = []
    for _ in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            gains.append(_auc(y[idx], p_a[idx]) - _auc(y[idx], p_b[idx]))
    if not gains:
        raise InsufficientData("every bootstrap resample held one class only; need more rows of each.")
    low, high = np.percentile(gains, [2.5, 97.5])
    return Interval(estimate=point, low=float(low), high=float(high), method="percentile bootstrap")


def balanced_rows(y: np.ndarray, seed: int) -> np.ndarray:
    """Sorted row indices with equal numbers of correct and incorrect rows (all of the rarer class, a
    seeded random draw of the other): the paper's balanced evaluation set, where chance is 0.5."""
    y = np.asarray(y, dtype=bool)
    correct, incorrect = np.flatnonzero(y), np.flatnonzero(~y)
    per_class = min(len(correct), len(incorrect))
    rng = np.random.default_rng(seed)
    keep = np.concatenate(
        [rng.choice(correct, per_class, replace=False), rng.choice(incorrect, per_class, replace=False)]
    )
    return np.sort(keep)
