"""Per-head clustering and the 2-D map with real UMAP (slow: UMAP compiles with numba once per process,
so every test here shares one module-scoped fit)."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.analysis import NOISE, build_cluster_map, cluster_head, cluster_heads
from attnlens.config import AnalysisSettings
from attnlens.heads import HeadRef

pytestmark = pytest.mark.slow

N_PER_BLOB = 150


def blobs(seed: int = 0, dim: int = 64):
    """Three blobs that differ in direction (what cosine UMAP sees), plus exact duplicate rows."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(3, dim))
    truth = np.repeat(np.arange(3), N_PER_BLOB)
    x = directions[truth] + rng.normal(0, 0.25, size=(len(truth), dim))
    x[10:20] = x[0]  # duplicates, as identical patterns give identical embeddings
    return x.astype(np.float32), truth


@pytest.fixture(scope="module")
def clustered():
    x, truth = blobs()
    tasks = np.where(truth == 1, "eol", "identifiers")
    result = cluster_head(x, AnalysisSettings(), attributes={"task": tasks}, head=HeadRef(0, 3))
    return x, truth, result


def test_finds_the_blobs(clustered):
    _, truth, result = clustered
    assert result.reason is None and result.head == HeadRef(0, 3)
    assert result.n_clusters == 3
    assert result.noise_fraction < 0.05
    for blob in range(3):
        found = result.labels[(truth == blob) & (result.labels != NOISE)]
        assert len(set(found.tolist())) == 1  # one blob, one cluster
    sizes = sorted(c.size for c in result.clusters if c.label != NOISE)
    assert sizes[0] >= N_PER_BLOB - 10


def test_medoids_and_attributes_belong_to_their_clusters(clustered):
    _, truth, result = clustered
    for summary in result.clusters:
        if summary.label == NOISE:
            continue
        assert result.labels[summary.medoid] == summary.label
        blob = truth[summary.medoid]
        expected_task = "eol" if blob == 1 else "identifiers"
        assert summary.attributes["task"] == {expected_task: summary.size}


def test_is_deterministic_for_a_seed(clustered):
    x, _, result = clustered
    again = cluster_head(x, AnalysisSettings())
    np.testing.assert_array_equal(again.labels, result.labels)


def test_cluster_heads_walks_every_head():
    x, _ = blobs(seed=1)
    stacked = np.stack([x, x[::-1]], axis=1)  # (n, 2 heads, d)
    results = list(cluster_heads(stacked, [HeadRef(0, 0), HeadRef(0, 1)], AnalysisSettings()))
    assert [r.head for r in results] == [HeadRef(0, 0), HeadRef(0, 1)]
    assert all(r.n_clusters == 3 for r in results)


def test_map_fits_a_sample_and_transforms_the_rest():
    x, truth = blobs(seed=2)
    progress = []
    result = build_cluster_map(
        x,
        AnalysisSettings(map_fit_sample=200),
        chunk_rows=100,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert result.coordinates.shape == (len(x), 2) and np.isfinite(result.coordinates).all()
    assert len(result.fit_rows) == 200 and len(set(result.fit_rows.tolist())) == 200
    assert progress[0] == (200, len(x)) and progress[-1] == (len(x), len(x)) and len(progress) == 4
    # Transformed points land next to fitted points of their own blob.
    fitted = np.zeros(len(x), bool)
    fitted[result.fit_rows] = True
    placed = result.coordinates[~fitted]
    anchors = result.coordinates[fitted]
    nearest = np.argmin(((placed[:, None, :] - anchors[None]) ** 2).sum(axis=2), axis=1)
    assert np.mean(truth[fitted][nearest] == truth[~fitted]) > 0.95
