"""Anomalies: how unusual a pattern is for its head, from AP-MAE's reconstruction error.

AP-MAE reconstructs a masked pattern well when it looks like the patterns it learned from; each pattern's
error (`APMAE.embed_with_errors`: masked-patch MSE, one fixed mask for all) is stored at build time. Errors
differ a lot between heads (a sink head is easy, a broad one hard), so a pattern is judged against its own
head's errors over the atlas:

- percentile: the share of the head's atlas patterns whose error is at most this one's (1.0 = the worst);
- robust z: (error - the head's median) / (1.4826 x the head's median absolute deviation), which ranks
  patterns of different heads on one scale (the atlas's list of most unusual patterns).

An input the atlas has not seen shows up as many heads at once far in their tails: `unusual_share` is the
share of an input's heads above their own `TAIL` percentile (about 1 - TAIL by chance on a large atlas;
`ErrorDistributions.chance_share` gives it exactly for the atlas's head sizes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from attnlens.heads import HeadRef
from attnlens.store.head_scores import ScoreTable

ERROR = "reconstruction_error"
TAIL = 0.99  # a head's pattern is in its tail above this percentile of the head's atlas errors
MAD_TO_SD = 1.4826  # the MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True)
class HeadErrors:
    """One head's reconstruction errors over the atlas, sorted."""

    sorted_errors: np.ndarray  # (n,) float64 ascending
    median: float
    spread: float  # 1.4826 x MAD; floored so that a head of identical errors does not divide by 0

    def percentile(self, error: float) -> float:
        return float(np.searchsorted(self.sorted_errors, error, side="right") / len(self.sorted_errors))

    def robust_z(self, error: float) -> float:
        return (error - self.median) / self.spread


@dataclass(frozen=True)
class ErrorDistributions:
    model_name: str
    heads: dict[HeadRef, HeadErrors]
    n_patterns: int

    def get(self, ref: HeadRef) -> HeadErrors | None:
        return self.heads.get(ref)

    def chance_share(self, refs: Iterable[HeadRef], *, in_atlas: bool) -> float | None:
        """The share of these heads expected in their tail by chance alone, for a pattern like the atlas's:
        with n errors a head's tail starts at k = floor(TAIL n) + 1 patterns at or below, so a new pattern
        (one of n + 1 exchangeable values) lands there with chance (n + 1 - k) / (n + 1), an atlas pattern
        (one of the n) with (n + 1 - k) / n. About 1 - TAIL for large n; 1 / 13 for a 12-pattern head."""
        chances = []
        for ref in refs:
            head = self.heads.get(ref)
            if head is None:
                continue
            n = len(head.sorted_errors)
            k = math.floor(TAIL * n) + 1
            chances.append((n + 1 - k) / (n if in_atlas else n + 1))
        return float(np.mean(chances)) if chances else None

    def unusual_share(self, errors: Mapping[HeadRef, float]) -> float | None:
        """The share of the given heads whose error lies above their own TAIL percentile; None when no
        given head has an atlas distribution."""
        judged = [self.heads[ref].percentile(e) > TAIL for ref, e in errors.items() if ref in self.heads]
        return float(np.mean(judged)) if judged else None


def error_distributions(table: ScoreTable) -> ErrorDistributions:
    """Per head, its sorted errors, median and spread (rows without an error are left out)."""
    errors = table.scores[ERROR]
    present = ~np.isnan(errors)
    n_heads = int(table.head.max()) + 1 if table.n_patterns else 1
    key = (table.layer * n_heads + table.head)[present]
    values = errors[present]
    order = np.lexsort((values, key))
    key, values = key[order], values[order]
    keys, starts = np.unique(key, return_index=True)
    heads: dict[HeadRef, HeadErrors] = {}
    stops = [*starts[1:], len(key)] if len(starts) else []
    for head_key, start, stop in zip(keys, starts, stops, strict=True):
        block = values[start:stop]
        median = float(np.median(block))
        mad = float(np.median(np.abs(block - median)))
        floor = max(abs(median) * 1e-6, 1e-12)
        heads[HeadRef(*divmod(int(head_key), n_heads))] = HeadErrors(
            block, median, max(MAD_TO_SD * mad, floor)
        )
    return ErrorDistributions(table.model_name, heads, int(present.sum()))


@dataclass(frozen=True)
class Anomaly:
    pattern_id: int
    inference_id: int
    head: HeadRef
    error: float
    percentile: float  # within its head
    robust_z: float
    head_median: float


def most_unusual(table: ScoreTable, distributions: ErrorDistributions, limit: int) -> list[Anomaly]:
    """The `limit` patterns of the table with the highest robust z within their head."""
    errors = table.scores[ERROR]
    present = np.flatnonzero(~np.isnan(errors))
    if present.size == 0:
        return []
    n_heads = int(table.head.max()) + 1
    refs = [HeadRef(*divmod(k, n_heads)) for k in range(int(table.layer.max() + 1) * n_heads)]
    medians = np.array([distributions.heads[r].median if r in distributions.heads else np.nan for r in refs])
    spreads = np.array([distributions.heads[r].spread if r in distributions.heads else np.nan for r in refs])
    key = table.layer[present] * n_heads + table.head[present]
    z = (errors[present] - medians[key]) / spreads[key]
    top = present[np.argsort(-z, kind="stable")[:limit]]
    out = []
    for row in top:
        ref = HeadRef(int(table.layer[row]), int(table.head[row]))
        head = distributions.heads[ref]
        error = float(errors[row])
        out.append(
            Anomaly(
                pattern_id=int(table.pattern_ids[row]), inference_id=int(table.inference_ids[row]), head=ref,
                error=error, percentile=head.percentile(error), robust_z=head.robust_z(error),
                head_median=head.median,
            )
        )  # fmt: skip
    return out
