"""The paper's predictor kind, `clusters_catboost`: one categorical feature per head, named
`L{layer}H{head}`, whose value is the head's cluster id (as a string; -1 = noise); a CatBoostClassifier
with early stopping. SHAP values come from CatBoost with its layout read correctly (the expected value is
the LAST column; the reference notebook shifted every head by one)."""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlens.analysis.predictor_kinds import PredictorKindImpl, register_predictor_kind
from attnlens.analysis.predictors import check_labels, head_names
from attnlens.config import AnalysisSettings
from attnlens.contracts.predictors import PredictorKindSpec
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef

CLUSTERS_CATBOOST = "clusters_catboost"


def _catboost_pool(cluster_ids: np.ndarray, heads: tuple[HeadRef, ...], y: np.ndarray | None = None) -> Any:
    from catboost import Pool

    ids = np.asarray(cluster_ids)
    if ids.ndim != 2 or ids.shape[1] != len(heads):
        raise InvalidInput(f"cluster ids must be (rows, {len(heads)} heads), got shape {ids.shape}.")
    # CatBoost rejects float categories; strings make "cluster 3" a category, never a magnitude.
    categories = ids.astype(np.int64).astype(str).astype(object)
    return Pool(categories, label=y, cat_features=list(range(len(heads))), feature_names=head_names(heads))


def _catboost(settings: AnalysisSettings, iterations: int, seed: int) -> Any:
    from catboost import CatBoostClassifier

    return CatBoostClassifier(
        iterations=iterations,
        depth=settings.predictor_depth,
        learning_rate=settings.predictor_learning_rate,
        loss_function="Logloss",
        random_seed=seed,
        thread_count=settings.predictor_threads,
        allow_writing_files=False,
        verbose=False,
    )


@dataclass
class ClusterCatBoostPredictor:
    """The paper's predictor: CatBoost over per-head cluster ids."""

    heads: tuple[HeadRef, ...]
    model: Any  # catboost.CatBoostClassifier, trained with class 1 = correct
    kind: str = CLUSTERS_CATBOOST

    def pool(self, cluster_ids: np.ndarray) -> Any:
        return _catboost_pool(cluster_ids, self.heads)

    def raw_score(self, cluster_ids: np.ndarray) -> np.ndarray:
        """Log-odds of correctness, (rows,)."""
        return np.asarray(
            self.model.predict(self.pool(cluster_ids), prediction_type="RawFormulaVal"), dtype=np.float64
        )

    def predict_proba(self, cluster_ids: np.ndarray) -> np.ndarray:
        """P(correct) per row, (rows,)."""
        return 1.0 / (1.0 + np.exp(-self.raw_score(cluster_ids)))


def _stratified_holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    train, held_out = train_test_split(rows, test_size=fraction, stratify=y, random_state=seed)
    return np.sort(train), np.sort(held_out)


def fit_catboost_early_stopped(
    cluster_ids: np.ndarray, y: np.ndarray, heads: tuple[HeadRef, ...], settings: AnalysisSettings, seed: int
) -> tuple[ClusterCatBoostPredictor, int]:
    """Train on all but a stratified `predictor_eval_fraction` of the rows, stopping when log-loss on that
    share stops improving; returns the predictor (at its best round) and the number of rounds used."""
    train, held_out = _stratified_holdout(y, settings.predictor_eval_fraction, seed)
    model = _catboost(settings, settings.predictor_iterations, seed)
    model.fit(
        _catboost_pool(cluster_ids[train], heads, y[train]),
        eval_set=_catboost_pool(cluster_ids[held_out], heads, y[held_out]),
        early_stopping_rounds=settings.predictor_early_stopping,
        use_best_model=True,
    )
    return ClusterCatBoostPredictor(heads, model), int(model.get_best_iteration()) + 1


def fit_cluster_predictor(
    cluster_ids: np.ndarray,
    correct: np.ndarray,
    heads: list[HeadRef] | tuple[HeadRef, ...],
    settings: AnalysisSettings,
    *,
    iterations: int | None = None,
) -> ClusterCatBoostPredictor:
    """CatBoost on (rows, head) cluster ids, trained on every row. With `iterations` None the round count
    is first found by early stopping on a stratified held-out share, then the model is refitted on all
    rows for that many rounds (cross-validation passes the rounds it found instead)."""
    heads = tuple(heads)
    y = check_labels(correct, len(cluster_ids))
    if iterations is None:
        _, iterations = fit_catboost_early_stopped(np.asarray(cluster_ids), y, heads, settings, settings.seed)
    model = _catboost(settings, iterations, settings.seed)
    model.fit(_catboost_pool(cluster_ids, heads, y))
    return ClusterCatBoostPredictor(heads, model)


def _catboost_save(predictor: ClusterCatBoostPredictor, archive: zipfile.ZipFile) -> dict[str, Any]:
    # CatBoost writes its native format only to a path.
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.cbm")
        predictor.model.save_model(path)
        with open(path, "rb") as handle:
            archive.writestr("model.cbm", handle.read())
    return {}


def _catboost_load(
    _meta: dict[str, Any], archive: zipfile.ZipFile, heads: tuple[HeadRef, ...]
) -> ClusterCatBoostPredictor:
    from catboost import CatBoostClassifier

    model = CatBoostClassifier()
    model.load_model(blob=archive.read("model.cbm"))
    return ClusterCatBoostPredictor(heads, model)


def _catboost_shap(predictor: ClusterCatBoostPredictor, features: np.ndarray) -> tuple[np.ndarray, float]:
    shap = np.asarray(
        predictor.model.get_feature_importance(data=predictor.pool(features), type="ShapValues"),
        dtype=np.float64,
    )  # (rows, head + 1): CatBoost puts the expected value LAST (the reference notebook read it first)
    return shap[:, :-1], float(shap[0, -1])


register_predictor_kind(
    PredictorKindImpl(
        spec=PredictorKindSpec(
            CLUSTERS_CATBOOST, "cluster_ids", "the paper's: CatBoost over each head's cluster id"
        ),
        fit_fold=lambda x, y, heads, settings, seed: fit_catboost_early_stopped(x, y, heads, settings, seed),
        fit_final=lambda x, y, heads, settings, rounds: fit_cluster_predictor(
            x, y, heads, settings, iterations=rounds
        ),
        shap=_catboost_shap,
        save=_catboost_save,
        load=_catboost_load,
    )
)
