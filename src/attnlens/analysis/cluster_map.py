"""The global 2-D cluster map: one UMAP fitted on a sample, every other point placed with `transform`.

Fitting UMAP on millions of points is slow and memory-hungry; fitting on a seeded sample and placing the
rest with the fitted model's `transform` (no new fit) keeps the map's layout fixed by the sample, so points
added later land in the same picture.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlens.analysis.clustering import jitter_duplicates
from attnlens.config import AnalysisSettings
from attnlens.errors import InsufficientData, InvalidInput

MIN_MAP_POINTS = 4  # UMAP's spectral layout in 2-D needs more points than dimensions + 1


@dataclass(frozen=True)
class ClusterMap:
    """2-D coordinates of every input row, and how the map was made."""

    coordinates: np.ndarray  # (n, 2) float32, row i is input row i
    fit_rows: np.ndarray  # (m,) int64: the rows UMAP was fitted on; the others were transformed
    reducer: Any  # the fitted umap.UMAP, to place later points in this process (not for storage)


def build_cluster_map(
    embeddings: np.ndarray,
    settings: AnalysisSettings,
    *,
    chunk_rows: int = 20_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> ClusterMap:
    """Fit a 2-D UMAP on at most `settings.map_fit_sample` rows of (n, d) embeddings, then transform the
    rest in chunks. `on_progress(done, total)` is called after the fit and after each chunk."""
    import umap

    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidInput(f"map embeddings must be a 2-D (n, d) array, got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise InvalidInput("embeddings contain NaN or infinite values; re-embed those patterns first.")
    n = len(x)
    if n < MIN_MAP_POINTS:
        raise InsufficientData(
            f"a map needs at least {MIN_MAP_POINTS} points, got {n}; analyse more inferences."
        )
    rng = np.random.default_rng(settings.seed)
    fit_rows = np.sort(rng.choice(n, size=min(n, settings.map_fit_sample), replace=False))
    rest = np.setdiff1d(np.arange(n), fit_rows, assume_unique=True)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(settings.map_neighbors, len(fit_rows) - 1),
        min_dist=settings.map_min_dist,
        metric=settings.umap_metric,
        random_state=settings.seed,
        n_jobs=1,
    )
    coordinates = np.empty((n, 2), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        coordinates[fit_rows] = reducer.fit_transform(
            jitter_duplicates(x[fit_rows], settings.dedup_jitter, rng)
        )
        if on_progress is not None:
            on_progress(len(fit_rows), n)
        for start in range(0, len(rest), chunk_rows):
            rows = rest[start : start + chunk_rows]
            coordinates[rows] = reducer.transform(x[rows])
            if on_progress is not None:
                on_progress(len(fit_rows) + start + len(rows), n)
    return ClusterMap(coordinates=coordinates, fit_rows=fit_rows, reducer=reducer)
