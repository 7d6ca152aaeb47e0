"""Interval estimates and probability-quality measures shared by predictor evaluation and ablation statistics.

Two kinds of 95% interval are used, each where it fits:
- Wilson score interval for a single proportion (an accuracy over n independent rows): closed form,
  keeps its coverage near 95% even at n = 100 and accuracies near 0 or 1, unlike the normal interval.
- Percentile bootstrap (resampling rows with replacement) for statistics that are not one proportion,
  such as a difference of paired accuracies or flip counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from attnlens.errors import InvalidInput

Z_95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided 95% interval; `method` names how the interval was computed."""

    estimate: float
    low: float
    high: float
    method: str

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson_interval(successes: int, trials: int) -> Interval:
    """95% Wilson score interval of a proportion."""
    if trials <= 0:
        raise InvalidInput("a proportion needs at least one trial; pass a non-empty set of rows.")
    if not 0 <= successes <= trials:
        raise InvalidInput(f"successes must lie in 0..trials, got {successes} of {trials}.")
    p = successes / trials
    z2 = Z_95**2
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = Z_95 * np.sqrt(p * (1 - p) / trials + z2 / (4 * trials**2)) / (1 + z2 / trials)
    # At 0 or n successes the bound is exactly 0 or 1; the formula gets there only up to rounding.
    low = 0.0 if successes == 0 else max(0.0, float(centre - half))
    high = 1.0 if successes == trials else min(1.0, float(centre + half))
    return Interval(estimate=p, low=low, high=high, method="wilson")


def bootstrap_intervals(
    statistics: Callable[[np.ndarray], np.ndarray],
    n_rows: int,
    *,
    resamples: int,
    seed: int,
    strata: np.ndarray | None = None,
) -> list[Interval]:
    """Percentile-bootstrap 95% intervals of several statistics of the same rows.

    `statistics(indices)` gets a (resamples, n_rows) integer matrix of row indices (row 0 is the identity,
    used for the point estimate) and returns a (resamples, n_stats) matrix: vectorised, so thousands of
    resamples cost milliseconds. With `strata` (one label per row), rows are resampled within their stratum,
    each stratum keeping its size: for a design that fixed those sizes (a balanced draw), so that no
    resample holds more rows of a kind than the data can.
    """
    if n_rows <= 0:
        raise InvalidInput("bootstrap needs at least one row.")
    rng = np.random.default_rng(seed)
    if strata is None:
        indices = rng.integers(0, n_rows, size=(resamples + 1, n_rows))
    else:
        indices = np.empty((resamples + 1, n_rows), dtype=np.int64)
        for label in np.unique(strata):
            members = np.flatnonzero(strata == label)
            indices[:, members] = members[rng.integers(0, len(members), size=(resamples + 1, len(members)))]
    indices[0] = np.arange(n_rows)
    values = np.asarray(statistics(indices), dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != resamples + 1:
        raise ValueError(f"statistics returned shape {values.shape}, expected ({resamples + 1}, n_stats)")
    point, resampled = values[0], values[1:]
    low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
    return [
        Interval(estimate=float(p), low=float(lo), high=float(hi), method="percentile bootstrap")
        for p, lo, hi in zip(point, low, high, strict=True)
    ]


def brier_score(y_true: np.ndarray, p_true: np.ndarray) -> float:
    """Mean squared error of the predicted probability of class 1 (0 is perfect; 0.25 is a coin)."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(p_true, dtype=np.float64)
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width probability bin: how often class 1 happened where the model said `mean_predicted`."""

    low: float
    high: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None


def reliability_table(y_true: np.ndarray, p_true: np.ndarray, bins: int) -> list[ReliabilityBin]:
    """Calibration table: equal-width bins over [0, 1]; empty bins have None rates."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(p_true, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # The last bin is closed on the right so that p = 1.0 lands in it.
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        table.append(
            ReliabilityBin(
                low=float(edges[b]),
                high=float(edges[b + 1]),
                count=count,
                mean_predicted=float(p[members].mean()) if count else None,
                observed_rate=float(y[members].mean()) if count else None,
            )
        )
    return table


def expected_calibration_error(table: list[ReliabilityBin]) -> float:
    """Count-weighted mean |observed rate - mean predicted| over the non-empty bins."""
    total = sum(b.count for b in table)
    if total == 0:
        return 0.0
    return float(
        sum(b.count * abs(b.observed_rate - b.mean_predicted) for b in table if b.count) / total  # type: ignore[operator]
    )
