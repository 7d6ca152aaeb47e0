"""Intervals, calibration tables, head-selection rules and ablation statistics."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.analysis import HeadRanking, ablation_statistics, select_heads, wilson_interval
from attnlens.analysis.stats import brier_score, expected_calibration_error, reliability_table
from attnlens.errors import InsufficientData, InvalidInput
from attnlens.heads import HeadRef


def test_wilson_interval_matches_the_textbook_values():
    # 81 of 263, worked by hand: centre 0.3108, half-width 0.0555.
    interval = wilson_interval(81, 263)
    assert interval.estimate == pytest.approx(81 / 263)
    assert interval.low == pytest.approx(0.2553, abs=5e-4)
    assert interval.high == pytest.approx(0.3662, abs=5e-4)
    zero = wilson_interval(0, 10)
    assert zero.low == 0.0 and zero.high == pytest.approx(0.2775, abs=5e-4)
    with pytest.raises(InvalidInput):
        wilson_interval(3, 0)


def test_wilson_interval_covers_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    truth, n, trials = 0.62, 100, 2000
    hits = rng.binomial(n, truth, size=trials)
    covered = np.mean([wilson_interval(int(h), n).covers(truth) for h in hits])
    assert 0.93 <= covered <= 0.975


def test_brier_and_reliability_table():
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    p = np.array([0.95, 0.05, 0.65, 0.75, 0.35, 0.15, 1.0, 0.0])
    assert brier_score(y, p) == pytest.approx(np.mean((p - y) ** 2))
    assert brier_score(y, y.astype(float)) == 0.0
    table = reliability_table(y, p, bins=4)
    # Bins [0, .25) [.25, .5) [.5, .75) [.75, 1]: 0.75 opens the last bin and p = 1.0 closes it.
    assert [b.count for b in table] == [3, 1, 1, 3]
    assert table[0].observed_rate == 0.0 and table[3].observed_rate == 1.0
    assert table[1].mean_predicted == pytest.approx(0.35)
    assert table[3].mean_predicted == pytest.approx(0.9)
    empty = reliability_table(y, p, bins=10)
    assert empty[4].count == 0 and empty[4].mean_predicted is None
    ece = expected_calibration_error(table)
    assert ece == pytest.approx((3 * (0.2 / 3) + 1 * 0.35 + 1 * 0.35 + 3 * 0.1) / 8)
    assert expected_calibration_error(reliability_table(y, y.astype(float), bins=4)) == 0.0


HEADS = [HeadRef(layer, head) for layer in range(3) for head in range(4)]


def shap_of(values):
    return dict(zip(HEADS, values, strict=True))


MEAN_SHAP = shap_of([0.5, -0.2, 0.0, 1e-6, 0.3, -0.9, 0.0, 0.1, -1e-7, -0.05, 0.5, 0.0])
RANKING = HeadRanking.from_means(MEAN_SHAP)


def test_top_positive_and_negative_order_by_mean_shap():
    positive = select_heads(RANKING, "top_positive", 3, eps=1e-5, seed=0)
    # Equal values (L0H0 and L2H2 at 0.5) are ordered by head name, so the result is reproducible.
    assert positive.heads == (HeadRef(0, 0), HeadRef(2, 2), HeadRef(1, 0))
    negative = select_heads(RANKING, "top_negative", 2, eps=1e-5, seed=0)
    assert negative.heads == (HeadRef(1, 1), HeadRef(0, 1))


def test_rules_return_fewer_heads_than_asked_when_the_pool_is_small():
    positive = select_heads(RANKING, "top_positive", 10, eps=1e-5, seed=0)
    assert positive.requested == 10 and len(positive.heads) == 4  # 0.5, 0.5, 0.3, 0.1
    negative = select_heads(RANKING, "top_negative", 10, eps=1e-5, seed=0)
    assert {h.name for h in negative.heads} == {"L0H1", "L1H1", "L2H1"}


def test_neutral_draws_without_replacement_from_near_zero_heads():
    near_zero = {HeadRef(0, 2), HeadRef(0, 3), HeadRef(1, 2), HeadRef(2, 0), HeadRef(2, 3)}
    for seed in range(30):
        chosen = select_heads(RANKING, "neutral", 4, eps=1e-5, seed=seed).heads
        assert len(chosen) == len(set(chosen)) == 4
        assert set(chosen) <= near_zero
    everything = select_heads(RANKING, "neutral", 50, eps=1e-5, seed=0)
    assert set(everything.heads) == near_zero


def test_random_rule_is_seeded_distinct_and_covers_all_heads():
    a = select_heads(RANKING, "random", 5, eps=1e-5, seed=7).heads
    assert a == select_heads(RANKING, "random", 5, eps=1e-5, seed=7).heads
    assert len(set(a)) == 5
    seen = set()
    for seed in range(40):
        seen |= set(select_heads(RANKING, "random", 3, eps=1e-5, seed=seed).heads)
    assert seen == set(HEADS)
    assert set(select_heads(RANKING, "random", 100, eps=1e-5, seed=0).heads) == set(HEADS)


def test_selection_rejects_unknown_rules_and_negative_counts():
    with pytest.raises(InvalidInput, match="unknown selection rule"):
        select_heads(RANKING, "pos_only", 1, eps=1e-5, seed=0)
    with pytest.raises(InvalidInput):
        select_heads(RANKING, "random", -1, eps=1e-5, seed=0)


def test_ablation_statistics_count_flips_exactly():
    before = np.array([1, 1, 0, 0, 0, 1, 0, 1], dtype=bool)
    after = np.array([1, 0, 1, 1, 0, 1, 0, 0], dtype=bool)
    stats = ablation_statistics(before, after, resamples=500, seed=0)
    assert stats.n_scenarios == 8
    assert stats.incorrect_to_correct.estimate == 2 and stats.correct_to_incorrect.estimate == 2
    assert stats.baseline_accuracy.estimate == 0.5 and stats.ablated_accuracy.estimate == 0.5
    assert stats.accuracy_change.estimate == 0.0
    assert stats.accuracy_change.low < 0 < stats.accuracy_change.high


def test_bootstrap_intervals_cover_the_true_effect_of_a_simulated_ablation():
    """Simulate experiments whose true effect is known and count how often the interval contains it."""
    rng = np.random.default_rng(3)
    n, p_i2c, p_c2i, trials = 400, 0.30, 0.10, 200
    # Balanced baseline (as in the paper's setup): the true accuracy change is (p_i2c - p_c2i) / 2.
    truth_change = (p_i2c - p_c2i) / 2
    covered_change = covered_i2c = 0
    for trial in range(trials):
        before = np.arange(n) % 2 == 0
        flip = np.where(before, rng.random(n) < p_c2i, rng.random(n) < p_i2c)
        after = before ^ flip
        stats = ablation_statistics(before, after, resamples=400, seed=trial)
        covered_change += stats.accuracy_change.covers(truth_change)
        covered_i2c += stats.incorrect_to_correct.covers(p_i2c * n / 2)
    assert 0.90 <= covered_change / trials <= 0.99
    assert 0.90 <= covered_i2c / trials <= 0.99


def test_flip_intervals_stay_within_the_scenarios_that_could_flip():
    """A balanced set of 100 right and 100 wrong, every right one turned wrong: the count of right-to-wrong
    flips is 100 and cannot be more. Resampling all 200 together (before) gave "100 [86, 114]"; resampled
    within the baseline outcome it is exactly 100, and the baseline accuracy is the design's 50%."""
    before = np.arange(200) % 2 == 0
    after = np.zeros(200, dtype=bool)
    stats = ablation_statistics(before, after, resamples=1000, seed=0)
    c2i = stats.correct_to_incorrect
    assert (c2i.estimate, c2i.low, c2i.high) == (100, 100, 100)
    base = stats.baseline_accuracy
    assert (base.estimate, base.low, base.high) == (0.5, 0.5, 0.5)
    # and where flips vary, the interval stays inside 0..100 while still having width
    after = before & (np.arange(200) % 4 == 0)  # half of the right ones stay right
    c2i = ablation_statistics(before, after, resamples=1000, seed=0).correct_to_incorrect
    assert 0 <= c2i.low < c2i.estimate == 50 < c2i.high <= 100


def test_ablation_statistics_reject_bad_input():
    with pytest.raises(InvalidInput, match="equal length"):
        ablation_statistics(np.ones(3, bool), np.ones(4, bool), resamples=100, seed=0)
    with pytest.raises(InsufficientData):
        ablation_statistics(np.ones(0, bool), np.ones(0, bool), resamples=100, seed=0)
    with pytest.raises(InvalidInput, match="booleans"):
        ablation_statistics(np.array([0, 2]), np.array([1, 1]), resamples=100, seed=0)
