"""Correctness predictors: from one inference's heads to the probability that its completion is correct.

Two built-in kinds (registered in `attnlens.analysis.predictor_kinds` at the end of this module), both
predicting P(correct) (class 1 = correct, so positive log-odds and positive SHAP values
push towards "correct"):
- `clusters_catboost` (the paper's): one categorical feature per head, named `L{layer}H{head}`, whose
  value is the head's cluster id (as a string; -1 = noise); a CatBoostClassifier.
- `embeddings_pca_logreg` (ours): each head's embedding reduced to a few principal components (fitted on
  the training rows only), all standardised, then an L2 logistic regression whose strength is chosen by
  inner cross-validation on log-loss. It keeps the within-cluster variation that cluster ids throw away.

Predictors serialise to bytes (a zip of JSON metadata, an .npz without pickles, and CatBoost's own .cbm)
so they can be stored in a database without the risks of unpickling.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlens.analysis.predictor_kinds import PredictorKindImpl, predictor_kind, register_predictor_kind
from attnlens.config import AnalysisSettings
from attnlens.contracts.predictors import PredictorKindSpec
from attnlens.errors import InsufficientData, InvalidInput
from attnlens.heads import HeadRef

CLUSTERS_CATBOOST = "clusters_catboost"
EMBEDDINGS_PCA_LOGREG = "embeddings_pca_logreg"
FORMAT_NAME = "attnlens-correctness-predictor"
FORMAT_VERSION = 1


def check_labels(correct: np.ndarray, n_rows: int, *, min_per_class: int = 2) -> np.ndarray:
    """Correctness as int 0/1, after checking length and that both classes have enough rows."""
    y = np.asarray(correct)
    if y.shape != (n_rows,):
        raise InvalidInput(f"need one correctness label per row: {n_rows} rows, labels of shape {y.shape}.")
    y = y.astype(np.int64)
    if not np.isin(y, (0, 1)).all():
        raise InvalidInput("correctness labels must be booleans or 0/1.")
    n_correct = int(y.sum())
    if min(n_correct, n_rows - n_correct) < min_per_class:
        raise InsufficientData(
            f"{n_correct} correct and {n_rows - n_correct} incorrect rows; a predictor needs at least "
            f"{min_per_class} of each. Analyse more scenarios of this task."
        )
    return y


def _head_names(heads: tuple[HeadRef, ...]) -> list[str]:
    return [h.name for h in heads]


def _catboost_pool(cluster_ids: np.ndarray, heads: tuple[HeadRef, ...], y: np.ndarray | None = None) -> Any:
    from catboost import Pool

    ids = np.asarray(cluster_ids)
    if ids.ndim != 2 or ids.shape[1] != len(heads):
        raise InvalidInput(f"cluster ids must be (rows, {len(heads)} heads), got shape {ids.shape}.")
    # CatBoost rejects float categories; strings make "cluster 3" a category, never a magnitude.
    categories = ids.astype(np.int64).astype(str).astype(object)
    return Pool(categories, label=y, cat_features=list(range(len(heads))), feature_names=_head_names(heads))


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


@dataclass
class EmbeddingPCAPredictor:
    """Per-head PCA of embeddings, standardised, then logistic regression (all in plain numpy arrays)."""

    heads: tuple[HeadRef, ...]
    pca_mean: np.ndarray  # (head, dim)
    pca_components: np.ndarray  # (head, component, dim)
    feature_mean: np.ndarray  # (head * component,)
    feature_scale: np.ndarray  # (head * component,)
    coef: np.ndarray  # (head * component,)
    intercept: float
    regularisation_c: float
    kind: str = EMBEDDINGS_PCA_LOGREG

    @property
    def components_per_head(self) -> int:
        return int(self.pca_components.shape[1])

    def standardised_features(self, embeddings: np.ndarray) -> np.ndarray:
        """(rows, head, dim) embeddings -> (rows, head * component) standardised PCA scores."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 3 or x.shape[1:] != self.pca_mean.shape:
            raise InvalidInput(
                f"embeddings must be (rows, {self.pca_mean.shape[0]} heads, {self.pca_mean.shape[1]} dims), "
                f"got {x.shape}."
            )
        scores = np.einsum("nhd,hkd->nhk", x - self.pca_mean[None], self.pca_components).reshape(len(x), -1)
        return (scores - self.feature_mean) / self.feature_scale

    def raw_score(self, embeddings: np.ndarray) -> np.ndarray:
        """Log-odds of correctness, (rows,)."""
        return self.standardised_features(embeddings) @ self.coef + self.intercept

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """P(correct) per row, (rows,)."""
        return 1.0 / (1.0 + np.exp(-self.raw_score(embeddings)))


CorrectnessPredictor = ClusterCatBoostPredictor | EmbeddingPCAPredictor


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


def per_head_pca(
    embeddings: np.ndarray, components: int, heads_per_chunk: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (head, dim) and top principal axes (head, component, dim) of each head's embeddings.

    One batched eigendecomposition of the per-head covariance matrices per chunk of heads (a loop of
    hundreds of small randomised SVDs took minutes on a loaded 2-core machine). Each axis's
    sign is fixed (largest-magnitude entry positive) so refits on the same rows give the same features.
    """
    from threadpoolctl import threadpool_limits

    x = np.asarray(embeddings, dtype=np.float64)
    n, n_heads, dim = x.shape
    k = max(1, min(components, dim, n - 1))
    means = x.mean(axis=0)
    axes = np.empty((n_heads, k, dim))
    # Small matrices: one BLAS thread is fastest, and on a shared, loaded machine threaded BLAS was 40x
    # slower here (measured: batched eigh 2.7 s with threads vs 0.07 s without).
    with threadpool_limits(limits=1):
        for first in range(0, n_heads, heads_per_chunk):
            chunk = slice(first, first + heads_per_chunk)
            centred = (x[:, chunk, :] - means[None, chunk]).transpose(1, 0, 2)  # (head, n, dim)
            covariance = centred.transpose(0, 2, 1) @ centred / max(n - 1, 1)  # (head, dim, dim)
            _, vectors = np.linalg.eigh(covariance)  # ascending eigenvalues, vectors in columns
            top = np.flip(vectors[:, :, -k:], axis=2).transpose(0, 2, 1)  # (head, k, dim), largest first
            signs = np.sign(np.take_along_axis(top, np.abs(top).argmax(axis=2)[..., None], axis=2))
            axes[chunk] = top * signs
    return means, axes


def fit_embedding_predictor(
    embeddings: np.ndarray,
    correct: np.ndarray,
    heads: list[HeadRef] | tuple[HeadRef, ...],
    settings: AnalysisSettings,
) -> EmbeddingPCAPredictor:
    """Per-head PCA + standardisation + logistic regression on (rows, head, dim) embeddings; every step is
    fitted on these rows only."""
    from sklearn.linear_model import LogisticRegressionCV

    heads = tuple(heads)
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] != len(heads):
        raise InvalidInput(f"embeddings must be (rows, {len(heads)} heads, dim), got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise InvalidInput("embeddings contain NaN or infinite values; re-embed those patterns first.")
    y = check_labels(correct, len(x), min_per_class=3)
    means, axes = per_head_pca(x, settings.predictor_pca_components)
    scores = np.einsum("nhd,hkd->nhk", x - means[None], axes).reshape(len(x), -1)  # (rows, head * component)
    feature_mean = scores.mean(axis=0)
    feature_scale = scores.std(axis=0)
    feature_scale[feature_scale < 1e-12] = 1.0  # a constant score carries no information; keep it finite
    z = (scores - feature_mean) / feature_scale
    model = LogisticRegressionCV(
        Cs=list(settings.predictor_logreg_c_grid),
        l1_ratios=(0.0,),  # pure L2
        use_legacy_attributes=False,  # C_ is one float (the sklearn >= 1.10 layout)
        cv=3,
        scoring="neg_log_loss",
        max_iter=5000,
        random_state=settings.seed,
    )
    from threadpoolctl import threadpool_limits

    # Many small BLAS calls: threaded BLAS was 30x slower than one thread on the shared 2-core machine.
    with threadpool_limits(limits=1):
        model.fit(z, y)
    return EmbeddingPCAPredictor(
        heads=heads,
        pca_mean=means,
        pca_components=axes,
        feature_mean=feature_mean,
        feature_scale=feature_scale,
        coef=model.coef_[0].astype(np.float64),
        intercept=float(model.intercept_[0]),
        regularisation_c=float(np.ravel(model.C_)[0]),
    )


def predictor_to_bytes(predictor: Any) -> bytes:
    """A self-describing zip: meta.json plus the kind's own files (arrays.npz without pickles, CatBoost's
    .cbm), so a stored predictor never needs unpickling."""
    impl = predictor_kind(predictor.kind)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        meta: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "kind": predictor.kind,
            "heads": _head_names(predictor.heads),
            **impl.save(predictor, archive),
        }
        archive.writestr("meta.json", json.dumps(meta))
    return buffer.getvalue()


def predictor_from_bytes(blob: bytes) -> Any:
    """The inverse of `predictor_to_bytes`."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            meta = json.loads(archive.read("meta.json"))
            if meta.get("format") != FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
                raise InvalidInput(
                    f"not an attnlens predictor of version {FORMAT_VERSION} (got {meta.get('format')!r} "
                    f"v{meta.get('version')!r}); retrain the predictor with this version."
                )
            heads = tuple(HeadRef.parse(name) for name in meta["heads"])
            return predictor_kind(meta["kind"]).load(meta, archive, heads)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"stored predictor is damaged ({exc}); retrain it.") from exc


# -- the two built-in kinds ----------------------------------------------------------------------------------


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


def _pca_save(predictor: EmbeddingPCAPredictor, archive: zipfile.ZipFile) -> dict[str, Any]:
    arrays = io.BytesIO()
    np.savez(
        arrays,
        pca_mean=predictor.pca_mean,
        pca_components=predictor.pca_components,
        feature_mean=predictor.feature_mean,
        feature_scale=predictor.feature_scale,
        coef=predictor.coef,
    )
    archive.writestr("arrays.npz", arrays.getvalue())
    return {"intercept": predictor.intercept, "regularisation_c": predictor.regularisation_c}


def _pca_load(
    meta: dict[str, Any], archive: zipfile.ZipFile, heads: tuple[HeadRef, ...]
) -> EmbeddingPCAPredictor:
    with np.load(io.BytesIO(archive.read("arrays.npz")), allow_pickle=False) as arrays:
        return EmbeddingPCAPredictor(
            heads=heads,
            pca_mean=arrays["pca_mean"],
            pca_components=arrays["pca_components"],
            feature_mean=arrays["feature_mean"],
            feature_scale=arrays["feature_scale"],
            coef=arrays["coef"],
            intercept=float(meta["intercept"]),
            regularisation_c=float(meta["regularisation_c"]),
        )


def _pca_shap(predictor: EmbeddingPCAPredictor, features: np.ndarray) -> tuple[np.ndarray, float]:
    z = predictor.standardised_features(features)  # (rows, head * component)
    contributions = (z * predictor.coef).reshape(len(z), len(predictor.heads), predictor.components_per_head)
    return contributions.sum(axis=2), predictor.intercept


def _register_builtins() -> None:
    register_predictor_kind(
        PredictorKindImpl(
            spec=PredictorKindSpec(
                CLUSTERS_CATBOOST, "cluster_ids", "the paper's: CatBoost over each head's cluster id"
            ),
            fit_fold=lambda x, y, heads, settings, seed: fit_catboost_early_stopped(
                x, y, heads, settings, seed
            ),
            fit_final=lambda x, y, heads, settings, rounds: fit_cluster_predictor(
                x, y, heads, settings, iterations=rounds
            ),
            shap=_catboost_shap,
            save=_catboost_save,
            load=_catboost_load,
        )
    )
    register_predictor_kind(
        PredictorKindImpl(
            spec=PredictorKindSpec(
                EMBEDDINGS_PCA_LOGREG,
                "embeddings",
                "ours: per-head PCA of the embeddings, then L2 logistic regression",
            ),
            fit_fold=lambda x, y, heads, settings, _seed: (
                fit_embedding_predictor(x, y, heads, settings),
                None,
            ),
            fit_final=lambda x, y, heads, settings, _rounds: fit_embedding_predictor(x, y, heads, settings),
            shap=_pca_shap,
            save=_pca_save,
            load=_pca_load,
        )
    )


_register_builtins()
