"""Stratified k-fold cross-validation of correctness predictors, with a shuffled-label control.

Every row gets exactly one out-of-fold probability (from the model that did not see it). From those:
accuracy at threshold 0.5 with a 95% Wilson interval (n = all rows; folds are not independent samples,
but each row is predicted once by a model that never saw it), Brier score, a reliability table, expected
calibration error and ROC AUC. The control repeats the whole procedure with the labels permuted (seeded):
whatever it scores above chance is leakage or optimism in the procedure, not signal.

The final model for new rows is fitted on all rows (`train_final_predictor`); for CatBoost it uses the
median number of rounds that early stopping chose across the folds, so no row is needed for stopping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnlens.analysis.predictor_kinds import Predictor, predictor_kind
from attnlens.analysis.predictors import check_labels
from attnlens.analysis.stats import (
    Interval,
    ReliabilityBin,
    brier_score,
    expected_calibration_error,
    reliability_table,
    wilson_interval,
)
from attnlens.config import AnalysisSettings
from attnlens.heads import HeadRef


@dataclass(frozen=True)
class PredictorEvaluation:
    """Cross-validated quality of one predictor kind on one task's rows."""

    kind: str
    n_rows: int
    n_correct: int
    folds: int
    accuracy: Interval  # out-of-fold accuracy at threshold 0.5, Wilson 95% interval
    fold_accuracies: list[float]
    majority_rate: float  # accuracy of always answering the more common class
    brier: float
    calibration_error: float
    roc_auc: float
    reliability: list[ReliabilityBin]
    out_of_fold_probability: np.ndarray  # (rows,) P(correct) from the fold model that did not see the row
    rounds: list[int] = field(
        default_factory=list
    )  # CatBoost rounds per fold (early stopping); empty otherwise
    shuffled_control: PredictorEvaluation | None = None  # the same procedure on permuted labels

    @property
    def final_rounds(self) -> int | None:
        """Rounds for the all-rows CatBoost model: the median over folds (None for other kinds)."""
        return int(np.median(self.rounds)) if self.rounds else None


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def cross_validate_predictor(
    kind: str,
    features: np.ndarray,
    correct: np.ndarray,
    heads: list[HeadRef] | tuple[HeadRef, ...],
    settings: AnalysisSettings,
    *,
    shuffled_control: bool = True,
) -> PredictorEvaluation:
    """Stratified k-fold CV of `kind` on `features` (the kind's input: (rows, heads) cluster ids or
    (rows, heads, dim) embeddings) against `correct` (rows,) booleans."""
    from sklearn.model_selection import StratifiedKFold

    heads = tuple(heads)
    x = np.asarray(features)
    impl = predictor_kind(kind)
    impl.check_features(x, len(heads))
    # Each training fold must still hold both classes after the early-stopping share is taken out.
    y = check_labels(correct, len(x), min_per_class=2 * settings.cv_folds)
    splitter = StratifiedKFold(n_splits=settings.cv_folds, shuffle=True, random_state=settings.seed)
    probability = np.empty(len(y), dtype=np.float64)
    fold_accuracies: list[float] = []
    rounds: list[int] = []
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        predictor, used = impl.fit_fold(x[train], y[train], heads, settings, settings.seed + fold)
        probability[test] = predictor.predict_proba(x[test])
        fold_accuracies.append(float(np.mean((probability[test] >= 0.5) == y[test])))
        if used is not None:
            rounds.append(used)
    hits = int(np.sum((probability >= 0.5) == y))
    table = reliability_table(y, probability, settings.calibration_bins)
    control = None
    if shuffled_control:
        permuted = np.random.default_rng(settings.seed).permutation(y)
        control = cross_validate_predictor(kind, x, permuted, heads, settings, shuffled_control=False)
    n_correct = int(y.sum())
    return PredictorEvaluation(
        kind=kind,
        n_rows=len(y),
        n_correct=n_correct,
        folds=settings.cv_folds,
        accuracy=wilson_interval(hits, len(y)),
        fold_accuracies=fold_accuracies,
        majority_rate=max(n_correct, len(y) - n_correct) / len(y),
        brier=brier_score(y, probability),
        calibration_error=expected_calibration_error(table),
        roc_auc=_roc_auc(y, probability),
        reliability=table,
        out_of_fold_probability=probability,
        rounds=rounds,
        shuffled_control=control,
    )


def train_final_predictor(
    kind: str,
    features: np.ndarray,
    correct: np.ndarray,
    heads: list[HeadRef] | tuple[HeadRef, ...],
    settings: AnalysisSettings,
    *,
    evaluation: PredictorEvaluation | None = None,
) -> Predictor:
    """The model to store and use on new rows, fitted on every row. Pass the CV `evaluation` of the same
    rows so a boosted kind reuses its rounds instead of holding rows out for early stopping."""
    heads = tuple(heads)
    x = np.asarray(features)
    impl = predictor_kind(kind)
    impl.check_features(x, len(heads))
    rounds = evaluation.final_rounds if evaluation is not None else None
    return impl.fit_final(x, np.asarray(correct), heads, settings, rounds)
