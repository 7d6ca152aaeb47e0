"""The parts of per-head clustering that need no UMAP: jitter, medoids, attribute counts, HDBSCAN on
already reduced points, and the too-few-points path."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.analysis import NOISE, cluster_head
from attnlens.analysis.clustering import (
    attribute_counts,
    cluster_medoids,
    duplicate_rows,
    hdbscan_labels,
    jitter_duplicates,
    minimum_points,
)
from attnlens.config import AnalysisSettings
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef


def test_jitter_leaves_distinct_rows_alone_and_separates_duplicates():
    rng = np.random.default_rng(0)
    x = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0], [1.0, 2.0]], dtype=np.float32)
    assert duplicate_rows(x).tolist() == [False, True, False, True]
    out = jitter_duplicates(x, 1e-3, rng)
    assert not duplicate_rows(out).any()
    np.testing.assert_array_equal(out[[0, 2]], x[[0, 2]])  # first occurrences are untouched
    assert np.abs(out - x).max() < 0.02
    distinct = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(jitter_duplicates(distinct, 1e-3, rng), distinct)


def test_jitter_falls_back_to_noise_everywhere_when_it_vanishes_in_float32():
    # At 1e9 a jitter of 1e-3 x 5^k (k < 3) is below float32 resolution: the paper's last resort applies.
    x = np.full((3, 2), 1e9, dtype=np.float32)
    out = jitter_duplicates(x, 1e-3, np.random.default_rng(0))
    assert out.dtype == np.float32
    assert not duplicate_rows(out).any()
    assert not np.array_equal(out[0], x[0])  # the fallback moved every row, first occurrences too
    small = np.zeros((50, 4), dtype=np.float32)
    assert not duplicate_rows(jitter_duplicates(small, 1e-3, np.random.default_rng(0))).any()


def test_cosine_medoid_is_the_member_with_least_total_distance():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 6))
    labels = np.repeat([0, 1, NOISE, 1], 10)
    medoids = cluster_medoids(x, labels, "cosine")
    assert set(medoids) == {0, 1}
    for label, medoid in medoids.items():
        members = np.flatnonzero(labels == label)
        unit = x[members] / np.linalg.norm(x[members], axis=1, keepdims=True)
        total = (1 - unit @ unit.T).sum(axis=1)  # brute force
        assert medoid == members[np.argmin(total)]
    euclidean = cluster_medoids(x, labels, "euclidean")
    members = np.flatnonzero(labels == 0)
    brute = np.linalg.norm(x[members][:, None] - x[members][None], axis=2).sum(axis=1)
    assert euclidean[0] == members[np.argmin(brute)]


def test_attribute_counts_per_cluster_including_noise():
    labels = np.array([0, 0, 1, NOISE, 1, 0])
    counts = attribute_counts(labels, {"task": ["eol", "eol", "identifiers", "eol", "eol", "random"]})
    assert counts[0]["task"] == {"eol": 2, "random": 1}
    assert counts[1]["task"] == {"identifiers": 1, "eol": 1}
    assert counts[NOISE]["task"] == {"eol": 1}
    with pytest.raises(InvalidInput, match="one per row"):
        attribute_counts(labels, {"task": ["eol"]})


def test_hdbscan_finds_separated_groups_in_reduced_space():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float32)
    points = np.concatenate([c + rng.normal(0, 0.3, size=(60, 2)) for c in centres]).astype(np.float32)
    labels = hdbscan_labels(points, AnalysisSettings())
    truth = np.repeat([0, 1, 2], 60)
    assert len(set(labels) - {NOISE}) == 3
    assert np.mean(labels == NOISE) < 0.1
    for group in range(3):  # each true group maps to one cluster
        found = labels[(truth == group) & (labels != NOISE)]
        assert len(set(found)) == 1


def test_too_few_points_are_all_noise_with_a_reason():
    settings = AnalysisSettings()
    n = minimum_points(settings) - 1
    x = np.random.default_rng(0).normal(size=(n, 16))
    result = cluster_head(x, settings, attributes={"task": ["eol"] * n}, head=HeadRef(2, 1))
    assert result.head == HeadRef(2, 1)
    assert result.labels.tolist() == [NOISE] * n
    assert result.n_clusters == 0 and result.noise_fraction == 1.0
    assert result.reason is not None and f"at least {n + 1}" in result.reason
    assert [c.label for c in result.clusters] == [NOISE] and result.clusters[0].attributes == {
        "task": {"eol": n}
    }
    empty = cluster_head(np.zeros((0, 16)), settings)
    assert empty.labels.shape == (0,) and empty.clusters == [] and empty.reason is not None


def test_bad_embeddings_are_refused():
    settings = AnalysisSettings()
    with pytest.raises(InvalidInput, match="2-D"):
        cluster_head(np.zeros((10, 2, 3)), settings)
    bad = np.zeros((30, 4))
    bad[3, 1] = np.nan
    with pytest.raises(InvalidInput, match="NaN"):
        cluster_head(bad, settings)
