"""Our predictor kind, `embeddings_pca_logreg`: each head's embedding reduced to a few principal
components (fitted on the training rows only), all standardised, then an L2 logistic regression whose
strength is chosen by inner cross-validation on log-loss. It keeps the within-cluster variation that
cluster ids throw away; its SHAP values are exact (a linear model's contributions, summed per head)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlens.analysis.predictor_kinds import PredictorKindImpl, register_predictor_kind
from attnlens.analysis.predictors import check_labels
from attnlens.config import AnalysisSettings
from attnlens.contracts.predictors import PredictorKindSpec
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef

EMBEDDINGS_PCA_LOGREG = "embeddings_pca_logreg"


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
