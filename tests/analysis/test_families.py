"""Pattern families on synthetic embeddings with known groups (real UMAP + HDBSCAN + kNN vote: slow only
by UMAP's numba compilation, so the fit is shared), and their summaries on hand-built rows: score labels
by the heads' rule, where a family occurs, and the correctness of its completions, each counted once."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.analysis.families import (
    NOT_COUNTED,
    RowAttributes,
    _by_size,
    completion_rate,
    fit_families,
    rate_of,
    score_labels,
    summarise_families,
)
from attnlens.analysis.stats import wilson_interval
from attnlens.config import AnalysisSettings
from attnlens.contracts.head_scores import SCORE_NAMES

GROUP_SIZES = (60, 120, 80)  # group 1 is the largest, so it becomes family 0
SETTINGS = AnalysisSettings(
    family_fit_sample=150, family_min_cluster_size=15, hdbscan_min_samples=5, umap_neighbors=10,
    umap_components=4, knn_k=7, family_examples=4,
)  # fmt: skip


def groups(seed: int = 0, dim: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Three groups that differ in direction (what cosine sees), with a few exact duplicates."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(len(GROUP_SIZES), dim))
    truth = np.repeat(np.arange(len(GROUP_SIZES)), GROUP_SIZES)
    x = directions[truth] + rng.normal(0, 0.2, size=(len(truth), dim))
    x[1:6] = x[0]
    return x.astype(np.float32), truth


@pytest.fixture(scope="module")
def fitted():
    x, truth = groups()
    return x, truth, fit_families(x, SETTINGS, chunk_rows=40)


@pytest.mark.slow
def test_fit_finds_the_groups_and_numbers_them_by_size(fitted):
    x, truth, fit = fitted
    assert fit is not None and fit.reason is None
    assert fit.n_families == 3
    assert len(fit.fit_rows) == 150 and np.all(np.diff(fit.fit_rows) > 0)
    assert np.mean(fit.labels == -1) < 0.05
    family_of_group = {}
    for group in range(3):
        found = fit.labels[(truth == group) & (fit.labels >= 0)]
        assert len(set(found.tolist())) == 1, group  # one group, one family
        family_of_group[group] = int(found[0])
    assert family_of_group == {1: 0, 2: 1, 0: 2}  # family 0 is the largest group
    # The fit sample's labels come from HDBSCAN (no vote); every other row won a share of the k votes.
    in_fit = np.zeros(len(x), dtype=bool)
    in_fit[fit.fit_rows] = True
    assert np.isnan(fit.vote_share[in_fit]).all()
    voted = fit.vote_share[~in_fit]
    assert len(voted) == len(x) - 150 and np.all((voted > 0) & (voted <= 1))


@pytest.mark.slow
def test_fit_is_deterministic_for_a_seed_and_stops_when_asked(fitted):
    x, _truth, fit = fitted
    again = fit_families(x, SETTINGS, chunk_rows=40)
    assert again is not None
    np.testing.assert_array_equal(again.labels, fit.labels)
    np.testing.assert_array_equal(again.vote_share, fit.vote_share)
    np.testing.assert_array_equal(again.fit_rows, fit.fit_rows)
    other = fit_families(x, SETTINGS.model_copy(update={"seed": 1}), chunk_rows=40)
    assert other is not None and not np.array_equal(other.fit_rows, fit.fit_rows)
    seen = []
    assert (
        fit_families(
            x, SETTINGS, chunk_rows=40, on_progress=lambda d, n: seen.append(d), should_stop=lambda: True
        )
        is None
    )
    assert seen == [150]  # the fit reported, then it stopped before the first vote


def test_too_few_patterns_are_all_noise_with_a_reason():
    x, _ = groups()
    fit = fit_families(x[:10], SETTINGS)
    assert fit is not None and fit.n_families == 0
    assert np.all(fit.labels == -1) and "at least 15" in (fit.reason or "")


def test_renumbering_by_size_keeps_noise_and_breaks_ties_by_old_label():
    labels = np.array([5, 5, 2, -1, 7, 7, 7, 2, -1])
    np.testing.assert_array_equal(_by_size(labels), [2, 2, 1, -1, 0, 0, 0, 1, -1])  # 5 and 2 tie: 2 first
    assert np.all(_by_size(np.array([-1, -1])) == -1)


def _scores(n: int, **columns: np.ndarray) -> dict[str, np.ndarray]:
    out = {name: np.full(n, np.nan) for name in SCORE_NAMES}
    out.update(columns)
    return out


def test_score_labels_follow_the_heads_rule():
    nan = np.nan
    profiles, labels = score_labels(
        _scores(
            5,
            previous_token_mass=np.array([0.2, 0.6, 0.6, 0.9, 0.7]),  # median 0.6 >= 0.5: previous-token
            diagonal_mass=np.array([0.5, 0.5, 0.5, 0.1, 0.9]),  # median exactly 0.5: reaches it
            first_token_mass=np.array([0.69, 0.69, 0.69, 0.9, 0.1]),  # median 0.69 < 0.7: no sink
            induction_mass=np.array([nan, nan, 0.34, 0.35, 0.9]),  # applies to 3: median 0.35 >= 0.3
            bracket_mass=np.array([0.0, 0.0, 0.0, nan, nan]),  # applies, ignored: 0, not NaN
        )
    )
    assert labels == ("previous_token_mass", "induction_mass", "diagonal_mass")  # median / threshold order
    assert profiles["induction_mass"].n_applicable == 3 and profiles["induction_mass"].median == 0.35
    assert profiles["first_token_mass"].median == 0.69 and not profiles["first_token_mass"].labelled
    assert profiles["bracket_mass"].n_applicable == 3 and profiles["bracket_mass"].median == 0.0
    assert profiles["callee_mass"].n_applicable == 0 and profiles["callee_mass"].median is None


def test_completion_rate_counts_each_completion_once():
    inference = np.array([1, 1, 1, 2, 2, 3, 4])
    correct = np.array([1, 1, 1, 0, 0, NOT_COUNTED, 1])
    distinct, rate = completion_rate(inference, correct)
    assert distinct == 4
    assert rate is not None and (rate.successes, rate.trials) == (2, 3)  # per pattern it would be 4 of 6
    expected = wilson_interval(2, 3)
    assert (rate.estimate, rate.low, rate.high) == (expected.estimate, expected.low, expected.high)
    assert rate_of(0, 0) is None
    assert completion_rate(np.array([7]), np.array([NOT_COUNTED])) == (1, None)


def test_summaries_say_what_the_members_are():
    """Summaries of given labels on hand-built rows (no UMAP): sizes, medoid and examples, where each
    family occurs, its labels and its completions' correctness."""
    x, truth = groups()
    n = len(truth)
    labels = np.where(truth == 1, 0, np.where(truth == 2, 1, -1))  # group 0 is noise here
    layer = np.where(truth == 1, np.arange(n) % 2, 3)  # family 0 in layers 0-1, family 1 in layer 3
    head = np.arange(n) % 3
    inference = np.arange(n) // 4  # 4 patterns per completion
    correct = np.where(truth == 1, 1, 0).astype(np.int8)
    correct[inference == inference[truth == 2][0]] = NOT_COUNTED
    tasks = np.where(truth == 1, "eol", np.where(np.arange(n) % 2 == 0, "identifiers", "noise"))
    previous = np.where(truth == 1, 0.8, 0.1)
    induction = np.where(truth == 2, 0.4, np.nan)
    scored = np.arange(n) % 5 != 0
    rows = RowAttributes(
        layer=layer, head=head, inference=inference, task=list(tasks), correct=correct,
        scores=_scores(n, previous_token_mass=np.where(scored, previous, np.nan),
                       induction_mass=np.where(scored, induction, np.nan)),
        scored=scored,
    )  # fmt: skip
    summaries = summarise_families(x, labels, rows, n_examples=4, top_heads=2)
    assert [s.label for s in summaries] == [0, 1]
    assert [s.size for s in summaries] == [120, 80]
    for s in summaries:
        members = np.flatnonzero(labels == s.label)
        assert s.medoid in members and s.examples[0] == s.medoid and len(set(s.examples)) == 4
        assert set(s.examples) <= set(members.tolist())
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        distance = 1 - unit[members] @ unit[s.medoid]
        furthest_example = max(distance[members == e][0] for e in s.examples)
        others = [distance[i] for i, m in enumerate(members) if m not in s.examples]
        assert furthest_example <= min(others) + 1e-6  # the examples are the members nearest the medoid
        assert s.n_scored == int(scored[members].sum())
        assert sum(s.layers.values()) == s.size and sum(s.tasks.values()) == s.size
        assert len(s.heads) == 2 and s.n_heads == len({(layer[m], head[m]) for m in members})
    first, second = summaries
    assert first.layers == {0: 60, 1: 60} and first.tasks == {"eol": 120}
    assert first.labels == ("previous_token_mass",) and first.scores["induction_mass"].n_applicable == 0
    assert second.layers == {3: 80} and second.labels == ("induction_mass",)
    assert list(second.tasks) == sorted(second.tasks, key=lambda t: -second.tasks[t])
    assert first.n_inferences == 30 and first.correctness is not None
    assert (first.correctness.successes, first.correctness.trials) == (30, 30)
    assert second.n_inferences == 20 and second.correctness is not None
    assert (second.correctness.successes, second.correctness.trials) == (0, 19)  # one completion not counted
    assert second.correctness.low == 0.0 and second.correctness.high == wilson_interval(0, 19).high
