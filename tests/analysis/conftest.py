"""Synthetic data with known structure for the analysis tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from attnlens.config import AnalysisSettings
from attnlens.heads import HeadRef


@dataclass(frozen=True)
class SyntheticTask:
    """Rows of one task: per-head cluster ids and embeddings, with correctness driven by one head."""

    heads: tuple[HeadRef, ...]
    cluster_ids: np.ndarray  # (rows, head)
    embeddings: np.ndarray  # (rows, head, dim)
    correct: np.ndarray  # (rows,) bool
    signal_head: int  # column whose cluster decides the odds of correctness


def make_task(
    n_rows: int = 400, n_layers: int = 3, n_heads: int = 4, dim: int = 8, seed: int = 0
) -> SyntheticTask:
    """Each head has 3 clusters (random per row) around well-separated centres; P(correct) is 0.9 when
    the signal head is in cluster 0 and 0.3 otherwise, whatever the other heads do. Overall P(correct) is
    0.5 (chance is 0.5) and the best possible accuracy is 1/3 x 0.9 + 2/3 x 0.7 = 0.77."""
    rng = np.random.default_rng(seed)
    heads = tuple(HeadRef(layer, head) for layer in range(n_layers) for head in range(n_heads))
    cluster_ids = rng.integers(0, 3, size=(n_rows, len(heads)))
    centres = rng.normal(0, 1, size=(len(heads), 3, dim)) * 4
    embeddings = centres[np.arange(len(heads))[None, :], cluster_ids] + rng.normal(
        0, 0.5, size=(n_rows, len(heads), dim)
    )
    signal_head = 5
    p_correct = np.where(cluster_ids[:, signal_head] == 0, 0.9, 0.3)
    correct = rng.random(n_rows) < p_correct
    return SyntheticTask(heads, cluster_ids, embeddings.astype(np.float32), correct, signal_head)


@pytest.fixture(scope="module")
def task() -> SyntheticTask:
    return make_task()


@pytest.fixture
def fast_settings() -> AnalysisSettings:
    """Defaults, with CatBoost kept small enough for a fast test file."""
    return AnalysisSettings(predictor_iterations=200, cv_folds=4, bootstrap_resamples=500)
