"""The confidence baseline and what attention adds over it, on synthetic rows whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.analysis.baselines import balanced_rows, compare_with_confidence, out_of_fold_logistic
from attnlens.errors import InvalidInput


def confidence_rows(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(rows, 3) confidence and labels that it decides: right with p = top-1 probability."""
    top1 = rng.uniform(0.05, 1.0, n)
    margin = top1 * rng.uniform(0.5, 1.0, n)
    entropy = 3 * (1 - top1) + rng.normal(0, 0.1, n)
    return np.column_stack([top1, margin, entropy]), rng.random(n) < top1


def test_attention_that_only_echoes_confidence_adds_nothing():
    """When correctness follows the model's confidence and the 'attention' probability is noise, the
    confidence baseline is well above chance and the gain's interval covers 0."""
    rng = np.random.default_rng(0)
    confidence, y = confidence_rows(600, rng)
    comparison = compare_with_confidence(
        y, rng.uniform(0, 1, 600), confidence, folds=5, seed=0, resamples=300
    )
    assert comparison.confidence.accuracy.low > comparison.confidence.chance
    assert comparison.accuracy_gain.covers(0.0) and comparison.auc_gain.covers(0.0)
    assert comparison.confidence.roc_auc is not None and comparison.confidence.roc_auc > 0.7


def test_attention_with_its_own_signal_adds_over_confidence():
    """When a head decides what confidence cannot see, attention + confidence beats confidence alone,
    with the gain's interval above 0."""
    rng = np.random.default_rng(1)
    n = 600
    confidence = np.column_stack([rng.uniform(0.1, 1, n), rng.uniform(0, 0.1, n), rng.uniform(0, 3, n)])
    head = rng.random(n) < 0.5
    y = rng.random(n) < np.where(head, 0.9, 0.1)
    attention = np.where(head, 0.85, 0.15) + rng.normal(0, 0.05, n)
    comparison = compare_with_confidence(y, attention, confidence, folds=5, seed=0, resamples=300)
    assert comparison.confidence.accuracy.low <= comparison.confidence.chance + 0.05
    assert comparison.accuracy_gain.low > 0.2 and comparison.auc_gain.low > 0.2
    assert comparison.combined.accuracy.estimate == pytest.approx(
        np.mean((comparison.combined_probability >= 0.5) == y)
    )


def test_the_baseline_uses_the_predictor_folds_and_refuses_missing_confidence():
    rng = np.random.default_rng(2)
    confidence, y = confidence_rows(100, rng)
    # Same labels, folds and seed: the same split, so the same probabilities twice.
    assert np.array_equal(
        out_of_fold_logistic(confidence, y, 5, 3), out_of_fold_logistic(confidence, y, 5, 3)
    )
    confidence[4, 1] = np.nan
    with pytest.raises(InvalidInput, match="NaN"):
        out_of_fold_logistic(confidence, y, 5, 3)


def test_balanced_rows_hold_every_rarer_row_and_as_many_of_the_other():
    y = np.array([True] * 30 + [False] * 7)
    keep = balanced_rows(y, seed=0)
    assert np.all(np.diff(keep) > 0)
    assert y[keep].sum() == 7 and (~y[keep]).sum() == 7
    assert set(np.flatnonzero(~y)) <= set(keep.tolist())
    assert np.array_equal(keep, balanced_rows(y, seed=0)) and not np.array_equal(
        keep, balanced_rows(y, seed=1)
    )
