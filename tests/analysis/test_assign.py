"""k-nearest-neighbour cluster assignment (cosine, FAISS in memory)."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.analysis import ClusterAssigner, assign_clusters, place_on_map
from attnlens.errors import InsufficientData, InvalidInput


def directional_clusters(n_per: int, dim: int, n_clusters: int, spread: float, seed: int):
    """Clusters that differ in direction (what cosine similarity sees), at random scales."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n_clusters, dim))
    labels = np.repeat(np.arange(n_clusters), n_per)
    points = directions[labels] + rng.normal(0, spread, size=(len(labels), dim))
    points *= rng.uniform(0.5, 5.0, size=(len(labels), 1))  # scale must not matter under cosine
    return points.astype(np.float32), labels


def test_recovers_labels_of_held_out_points():
    points, labels = directional_clusters(n_per=120, dim=32, n_clusters=5, spread=0.15, seed=0)
    labels = np.where(labels == 4, -1, labels)  # one group labelled noise: noise is a label like any other
    rng = np.random.default_rng(1)
    held_out = rng.random(len(labels)) < 0.2
    result = assign_clusters(points[~held_out], labels[~held_out], points[held_out], k=15)
    assert np.array_equal(result.labels, labels[held_out])
    assert result.vote_share.min() > 0.9


def test_vote_share_reflects_a_split_neighbourhood():
    # Three labelled points on one side, two on the other; the query sits closest to the two.
    labelled = np.array([[1, 0.0], [1, 0.1], [1, -0.1], [0.1, 1], [0, 1]], dtype=np.float32)
    labels = np.array([7, 7, 7, 3, 3])
    assigner = ClusterAssigner(labelled, labels, k=5)
    result = assigner.assign(np.array([0.2, 1.0]))
    assert result.labels.tolist() == [7] and result.vote_share[0] == pytest.approx(0.6)
    nearest_two = ClusterAssigner(labelled, labels, k=2).assign(np.array([[0.2, 1.0]]))
    assert nearest_two.labels.tolist() == [3] and nearest_two.vote_share[0] == pytest.approx(1.0)


def test_ties_go_to_the_more_similar_voters():
    labelled = np.array([[1, 0.0], [0, 1.0]], dtype=np.float32)
    result = ClusterAssigner(labelled, np.array([0, 1]), k=2).assign(np.array([[0.3, 1.0], [1.0, 0.2]]))
    assert result.labels.tolist() == [1, 0]
    assert np.allclose(result.vote_share, 0.5)


def test_k_larger_than_the_labelled_set_is_clipped():
    labelled = np.eye(3, dtype=np.float32)
    assigner = ClusterAssigner(labelled, np.array([2, 2, 5]), k=50)
    assert assigner.k == 3
    assert assigner.assign(np.array([0.0, 0.1, 1.0])).labels.tolist() == [2]


def test_bad_inputs_are_refused():
    with pytest.raises(InsufficientData):
        ClusterAssigner(np.zeros((0, 4)), np.zeros(0), k=3)
    with pytest.raises(InvalidInput):
        ClusterAssigner(np.ones((4, 3)), np.zeros(5), k=3)
    with pytest.raises(InvalidInput, match="3 columns"):
        ClusterAssigner(np.eye(3), np.arange(3), k=1).assign(np.ones((2, 4)))


def test_place_on_map_puts_new_points_among_their_neighbours():
    points, labels = directional_clusters(n_per=60, dim=16, n_clusters=3, spread=0.1, seed=4)
    # A stand-in map: each cluster drawn around its own 2-D centre.
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float32)
    coordinates = centres[labels] + np.random.default_rng(5).normal(0, 0.5, size=(len(labels), 2))
    queries, query_labels = directional_clusters(n_per=5, dim=16, n_clusters=3, spread=0.1, seed=4)
    placed = place_on_map(points, coordinates, queries + 0.01, k=10)
    assert placed.shape == (15, 2)
    assert np.all(np.linalg.norm(placed - centres[query_labels], axis=1) < 1.0)
    with pytest.raises(InvalidInput):
        place_on_map(points, coordinates[:-1], queries, k=10)
