"""Related heads across models: the distance between heads' embedding distributions has the known answers
of hand-built moments, is read from a real atlas file, and the label agreement measures what it says."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.analysis.cross_model import _auc, head_distances, label_agreement
from attnlens.errors import InsufficientData, InvalidInput
from attnlens.heads import HeadRef
from attnlens.store.head_moments import HeadTaskMoments, head_task_moments, model_embedders


def moments(
    model: str,
    means: list[list[list[float]]],
    stds: list[list[list[float]]],
    counts,
    tasks=("a", "b"),
    embedder: str | None = "ck",
) -> HeadTaskMoments:
    mean = np.asarray(means, dtype=float)
    std = np.asarray(stds, dtype=float)
    heads = tuple(HeadRef(0, h) for h in range(mean.shape[0]))
    return HeadTaskMoments(model, embedder, heads, tuple(tasks), np.asarray(counts), mean, std**2)


def test_distance_is_the_wasserstein_distance_of_diagonal_gaussians_averaged_over_shared_tasks():
    a = moments("A", [[[0, 0], [1, 0]]], [[[1, 1], [1, 1]]], [[10, 10]])
    b = moments(
        "B", [[[3, 4], [1, 0]], [[0, 0], [1, 0]]], [[[1, 1], [1, 1]], [[2, 1], [1, 1]]], [[10, 10], [10, 10]]
    )
    found = head_distances(a, b)
    # Head 0 of B: task a differs by the means (3,4) -> 25, task b identical -> 0: sqrt(mean(25, 0)).
    assert found.distances[0, 0] == pytest.approx(np.sqrt(12.5))
    # Head 1 of B: task a differs only by one standard deviation (2 vs 1) -> 1; task b -> 0.
    assert found.distances[0, 1] == pytest.approx(np.sqrt(0.5))
    assert found.nearest(HeadRef(0, 0), 2) == [
        (HeadRef(0, 1), pytest.approx(np.sqrt(0.5))),
        (HeadRef(0, 0), pytest.approx(np.sqrt(12.5))),
    ]
    assert found.nearest(HeadRef(0, 1), 1, from_a=False) == [(HeadRef(0, 0), pytest.approx(np.sqrt(0.5)))]


def test_tasks_with_too_few_patterns_are_left_out_and_no_shared_task_is_nan():
    a = moments("A", [[[0, 0], [0, 0]]], [[[0, 0], [0, 0]]], [[10, 1]])
    b = moments(
        "B", [[[1, 0], [9, 9]], [[1, 0], [9, 9]]], [[[0, 0], [0, 0]], [[0, 0], [0, 0]]], [[10, 10], [1, 10]]
    )
    found = head_distances(a, b, min_patterns=5)
    assert found.distances[0, 0] == pytest.approx(1.0)  # only task a counts: A has 1 pattern on task b
    assert np.isnan(found.distances[0, 1])  # B's head 1 has enough only on b, A only on a
    assert found.nearest(HeadRef(0, 0), 5) == [(HeadRef(0, 0), pytest.approx(1.0))]


def test_different_embedders_or_no_shared_task_are_refused():
    a = moments("A", [[[0, 0], [0, 0]]], [[[0, 0], [0, 0]]], [[10, 10]])
    with pytest.raises(InvalidInput, match="not comparable"):
        head_distances(a, moments("B", [[[0, 0], [0, 0]]], [[[0, 0], [0, 0]]], [[10, 10]], embedder="other"))
    with pytest.raises(InsufficientData, match="no task in common"):
        head_distances(a, moments("B", [[[0, 0], [0, 0]]], [[[0, 0], [0, 0]]], [[10, 10]], tasks=("x", "y")))


def test_auc_counts_ties_half():
    assert _auc(np.array([1.0]), np.array([2.0, 3.0])) == 1.0
    assert _auc(np.array([5.0]), np.array([2.0, 3.0])) == 0.0
    assert _auc(np.array([2.0]), np.array([2.0, 3.0])) == 0.75


def test_label_agreement_finds_same_label_heads_nearer_and_reports_chance():
    # Four heads per model on a line: heads 0 and 1 of both models sit together and carry the label.
    positions_a, positions_b = [0.0, 0.1, 5.0, 9.0], [0.05, 0.15, 7.0, 3.0]
    a = moments("A", [[[p, 0.0]] for p in positions_a], [[[0.0, 0.0]]] * 4, [[10]] * 4, tasks=("t",))
    b = moments("B", [[[p, 0.0]] for p in positions_b], [[[0.0, 0.0]]] * 4, [[10]] * 4, tasks=("t",))
    found = head_distances(a, b)
    label = "previous_token_mass"
    labels_a = {HeadRef(0, 0): [label], HeadRef(0, 1): [label]}
    labels_b = {HeadRef(0, 0): [label], HeadRef(0, 1): [label, "local_mass"]}
    (agreement,) = label_agreement(found, labels_a, labels_b, labels=(label,), resamples=200)
    assert (agreement.heads_a, agreement.heads_b) == (2, 2)
    assert agreement.nearest_hits == 2 and agreement.chance == 0.5
    assert agreement.mean_same is not None and agreement.mean_same < agreement.mean_all
    assert agreement.auc is not None and agreement.auc.estimate > 0.8
    assert agreement.auc.low <= agreement.auc.estimate <= agreement.auc.high
    # Each labelled head of A against its own partners: row 0 (at 0) ranks its two labelled partners at
    # (3 + 1/2)/4 and (2 + 1/2)/4, row 1 (at 0.1, both partners at 0.05) each at (2 + 2/2)/4: mean 0.75.
    assert agreement.row_auc is not None and agreement.row_auc.estimate == pytest.approx(0.75)
    # A label no head of B carries has no same-label pair: no AUC, never a made-up one.
    (absent,) = label_agreement(found, labels_a, {}, labels=(label,), resamples=10)
    assert (
        absent.auc is None and absent.mean_same is None and absent.nearest_hits == 0 and absent.chance == 0.0
    )


def test_moments_are_read_per_head_and_task_from_a_real_atlas(tiny_atlas, tiny_model):
    _, store, report = tiny_atlas
    model_name = tiny_model.info.name
    with store.session() as session:
        embedders = model_embedders(session, model_name)
        (embedder,) = embedders
        found = head_task_moments(session, model_name, embedder, batch_size=7)  # several keyset pages
    assert embedders[embedder] == report.processed
    n_heads = tiny_model.info.n_layers * tiny_model.info.n_heads
    assert found.n_patterns == report.processed * n_heads == report.head_patterns
    assert len(found.heads) == n_heads and found.heads == tuple(sorted(found.heads))
    # Every task mined the same number of scenarios, so every head has that many patterns per task.
    assert (found.counts == report.processed // len(found.tasks)).all()
    filled = found.counts > 0
    # Means of unit vectors have norm at most 1; variances are never negative.
    assert (np.linalg.norm(found.means[filled], axis=-1) <= 1 + 1e-9).all()
    assert (found.variances >= 0).all() and found.variances.any()
    # The same atlas against itself: each head is nearest to itself, at distance 0.
    same = head_distances(found, found, min_patterns=2)
    for head in found.heads:
        nearest = same.nearest(head, 1)
        assert nearest[0][0] == head and nearest[0][1] == pytest.approx(0.0, abs=1e-6)


def test_a_label_every_head_carries_has_nothing_to_contrast():
    a = moments("A", [[[0.0, 0.0]], [[1.0, 0.0]]], [[[0.0, 0.0]]] * 2, [[10]] * 2, tasks=("t",))
    found = head_distances(a, a)
    everyone = {HeadRef(0, 0): ["induction_mass"], HeadRef(0, 1): ["induction_mass"]}
    (row,) = label_agreement(found, everyone, everyone, labels=("induction_mass",), resamples=20)
    assert row.mean_same == row.mean_all and row.auc is None and row.row_auc is None  # not a fake 0.5
