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

from attnlens.analysis.predictors import (
    PREDICTOR_KINDS,
    CorrectnessPredictor,
    PredictorKind,
    check_labels,
    fit_catboost_early_stopped,
    fit_cluster_predictor,
    fit_embedding_predictor,
)
from attnlens.analysis.stats import (
    Interval,
    ReliabilityBin,
    brier_score,
    expected_calibration_error,
    reliability_table,
    wilson_interval,
)
from attnlens.config import AnalysisSettings
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef


@dataclass(frozen=True)
class PredictorEvaluation:
    """Cross-validated quality of one predictor kind on one task's rows."""

    kind: PredictorKind
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
    rounds: list[int] = field(default_factory=list)  # CatBoost rounds per fold (early stopping); empty otherwise
    shuffled_control: PredictorEvaluation | None = None  # the same procedure on permuted labels

    @property
    def final_rounds(self) -> int | None:
        """Rounds for the all-rows CatBoost model: the median over folds (None for other kinds)."""
        return int(np.median(self.rounds)) if self.rounds else None


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _fit(
    kind: PredictorKind,
    features: np.ndarray,
    y: np.ndarray,
    heads: tuple[HeadRef, ...],
    settings: AnalysisSettings,
    seed: int,
) -> tuple[CorrectnessPredictor, int | None]:
    if kind == "clusters_catboost":
        return fit_catboost_early_stopped(features, y, heads, settings, seed)
    return fit_embedding_predictor(features, y, heads, settings), None


def _check_kind_and_features(kind: str, features: np.ndarray, n_heads: int) -> None:
    if kind not in PREDICTOR_KINDS:
        raise InvalidInput(f"unknown predictor kind {kind!r}; choose one of {', '.join(PREDICTOR_KINDS)}.")
    expected_ndim = 2 if kind == "clusters_catboost" else 3
    if features.ndim != expected_ndim or features.shape[1] != n_heads:
        shape = "(rows, heads)" if expected_ndim == 2 else "(rows, heads, dim)"
        raise InvalidInput(f"{kind} needs features of shape {shape} with {n_heads} heads, got {features.shape}.")


def cross_validate_predictor(
    kind: PredictorKind,
    features: np.ndarray,
    correct: np.ndarray,
    heads: list[HeadRef] | tuple[HeadRef, ...],
    settings: AnalysisSettings,
    *,
    shuffled_control: bool = True,
) -> PredictorEvaluation:
    """Stratified k-fold CV of `kind` on `features` ((rows, heads) cluster ids for `clusters_catboost`,
    (rows, heads, dim) embeddings for `embeddings_pca_logreg`) against `correct` (rows,) booleans."""
    from sklearn.model_selection import StratifiedKFold

    heads = tuple(heads)
    x = np.asarray(features)
    _check_kind_and_features(kind, x, len(heads))
    # Each training fold must still hold both classes after the early-stopping share is taken out.
    y = check_labels(correct, len(x), min_per_class=2 * settings.cv_folds)
    splitter = StratifiedKFold(n_splits=settings.cv_folds, shuffle=True, random_state=settings.seed)
    probability = np.empty(len(y), dtype=np.float64)
    fold_accuracies: list[float] = []
    rounds: list[int] = []
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        predictor, used = _fit(kind, x[train], y[train], heads, settings, settings.seed + fold)
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
    kind: PredictorKind,
    features: np.ndarray,
    correct: np.ndarray,
    heads: list[HeadRef] | tuple[HeadRef, ...],
    settings: AnalysisSettings,
    *,
    evaluation: PredictorEvaluation | None = None,
) -> CorrectnessPredictor:
    """The model to store and use on new rows, fitted on every row. Pass the CV `evaluation` of the same
    rows so CatBoost reuses its rounds instead of holding rows out for early stopping."""
    heads = tuple(heads)
    x = np.asarray(features)
    _check_kind_and_features(kind, x, len(heads))
    if kind == "clusters_catboost":
        rounds = evaluation.final_rounds if evaluation is not None else None
        return fit_cluster_predictor(x, correct, heads, settings, iterations=rounds)
    return fit_embedding_predictor(x, correct, heads, settings)
