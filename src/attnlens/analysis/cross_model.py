"""Related heads across models: a distance between two heads' AP-MAE embedding distributions, and how well
it agrees with the head-type labels of both models.

Two heads of different models are compared only inside one embedding space (the same AP-MAE checkpoint) and
on comparable inputs: per task, each head's unit-normalised embeddings are summarised by their mean and
per-dimension variance, and the two heads' distance on that task is the 2-Wasserstein distance between the
two diagonal Gaussians, `||m1 - m2||^2 + ||s1 - s2||^2` (s: standard deviations). A pair's distance is the
square root of that, averaged over the tasks on which both heads have at least `min_patterns` patterns.
Per-task moments keep a model mined on more `identifier` holes from looking like another model that was not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float

from attnlens.analysis.stats import Interval
from attnlens.errors import InsufficientData, InvalidInput
from attnlens.heads import HeadRef
from attnlens.store.head_moments import HeadTaskMoments

# Labels the issue asks about first: their detectors are the simplest and the best understood.
VALIDATION_LABELS = ("previous_token_mass", "first_token_mass", "induction_mass")


@dataclass(frozen=True)
class CrossModelDistances:
    """Distances between every head of model A (rows) and every head of model B (columns); NaN where the two
    heads share no task with enough patterns."""

    model_a: str
    model_b: str
    embedder: str | None
    heads_a: tuple[HeadRef, ...]
    heads_b: tuple[HeadRef, ...]
    tasks: tuple[str, ...]  # the tasks both models have patterns of
    min_patterns: int
    distances: Float[np.ndarray, "a b"]

    def nearest(self, head: HeadRef, k: int, *, from_a: bool = True) -> list[tuple[HeadRef, float]]:
        """The `k` heads of the other model nearest to `head` (of A when `from_a`, else of B)."""
        mine, others = (self.heads_a, self.heads_b) if from_a else (self.heads_b, self.heads_a)
        if head not in mine:
            return []
        row = self.distances[mine.index(head)] if from_a else self.distances[:, mine.index(head)]
        order = [int(i) for i in np.argsort(row, kind="stable") if np.isfinite(row[i])][:k]
        return [(others[i], float(row[i])) for i in order]


def head_distances(a: HeadTaskMoments, b: HeadTaskMoments, *, min_patterns: int = 5) -> CrossModelDistances:
    """The distance between every pair of heads of two models embedded in the same space."""
    if a.embedder != b.embedder:
        raise InvalidInput(
            f"{a.model_name} is embedded with {a.embedder!r} and {b.model_name} with {b.embedder!r}: vectors "
            "of different AP-MAE checkpoints are not comparable. Embed both with one checkpoint."
        )
    if min_patterns < 2:
        raise InvalidInput("min_patterns must be at least 2: a variance needs two patterns.")
    tasks = tuple(t for t in a.tasks if t in b.tasks)
    if not tasks or not a.heads or not b.heads:
        raise InsufficientData(
            f"{a.model_name} and {b.model_name} have no task in common in this embedding space; mine the "
            "same tasks for both models."
        )
    total = np.zeros((len(a.heads), len(b.heads)))
    shared = np.zeros((len(a.heads), len(b.heads)))
    for task in tasks:
        i, j = a.tasks.index(task), b.tasks.index(task)
        ok_a: Bool[np.ndarray, " a"] = a.counts[:, i] >= min_patterns
        ok_b: Bool[np.ndarray, " b"] = b.counts[:, j] >= min_patterns
        squared = _squared_distances(a.means[:, i], b.means[:, j]) + _squared_distances(
            np.sqrt(a.variances[:, i]), np.sqrt(b.variances[:, j])
        )
        both = np.outer(ok_a, ok_b)
        total += np.where(both, squared, 0.0)
        shared += both
    with np.errstate(invalid="ignore", divide="ignore"):
        distances = np.where(shared > 0, np.sqrt(total / np.maximum(shared, 1)), np.nan)
    return CrossModelDistances(
        a.model_name, b.model_name, a.embedder, a.heads, b.heads, tasks, min_patterns, distances
    )


def _squared_distances(x: Float[np.ndarray, "a d"], y: Float[np.ndarray, "b d"]) -> Float[np.ndarray, "a b"]:
    """||x_i - y_j||^2 for every pair, never negative (the expansion can round below 0)."""
    squared = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(squared, 0.0)


@dataclass(frozen=True)
class LabelAgreement:
    """How much nearer heads that carry the same label in both models are than random pairs."""

    label: str  # a score name (attnlens.contracts.head_scores)
    heads_a: int  # heads of A with the label
    heads_b: int
    mean_same: float | None  # mean distance over same-label pairs (None: no such pair)
    mean_all: float  # mean distance over every pair: the random-pair baseline
    # P(a same-label pair is nearer than a random pair of heads); 0.5 is chance. Interval: bootstrap over
    # heads. None when there is no same-label pair, or every pair is one (nothing to contrast).
    auc: Interval | None
    # P(a same-label pair is nearer than the same head of A with a random head of B): each head against its
    # own partners, so a head that is far from everything (a sharp pattern among diffuse ones) still counts
    # as near its own kind when its kind is the nearest it has.
    row_auc: Interval | None
    nearest_hits: int  # heads of A with the label whose nearest head of B carries it too
    chance: float  # the share of B's heads that carry it: the hit rate of a random nearest head


def _auc(same: np.ndarray, every: np.ndarray) -> float:
    """P(a value of `same` < a value of `every`), ties counting half (Mann-Whitney)."""
    ordered = np.sort(every)
    below = np.searchsorted(ordered, same, side="left")
    at_or_below = np.searchsorted(ordered, same, side="right")
    greater = len(ordered) - at_or_below
    return float((greater + 0.5 * (at_or_below - below)).mean() / len(ordered))


def _aucs(matrix: np.ndarray, finite: np.ndarray, labelled: np.ndarray) -> tuple[float | None, float | None]:
    """(same-label pairs against every pair, against the other pairs of their own row); None where there is
    no same-label pair or nothing to contrast it with."""
    same = labelled & finite
    if not same.any() or same.sum() == finite.sum():
        return None, None
    rows = [
        _auc(matrix[i, same[i]], matrix[i, finite[i]])
        for i in np.flatnonzero(same.any(axis=1))
        if same[i].sum() < finite[i].sum()
        for _ in range(int(same[i].sum()))  # each same-label pair counts once
    ]
    return _auc(matrix[same], matrix[finite]), (float(np.mean(rows)) if rows else None)


def _interval(estimate: float | None, draws: list[float | None]) -> Interval | None:
    if estimate is None:
        return None
    kept = [d for d in draws if d is not None]
    low, high = np.percentile(kept, [2.5, 97.5]) if kept else (np.nan, np.nan)
    return Interval(estimate, float(low), float(high), "bootstrap over heads")


def label_agreement(
    distances: CrossModelDistances,
    labels_a: dict[HeadRef, list[str]],
    labels_b: dict[HeadRef, list[str]],
    *,
    labels: tuple[str, ...] = VALIDATION_LABELS,
    resamples: int = 1000,
    seed: int = 0,
) -> list[LabelAgreement]:
    """For each label, same-label pairs against random pairs: mean distances, AUC with a bootstrap interval
    (heads of both models resampled with replacement), and the nearest-head hit rate against chance."""
    matrix = distances.distances
    finite = np.isfinite(matrix)
    if not finite.any():
        raise InsufficientData(
            f"no pair of heads of {distances.model_a} and {distances.model_b} shares a task with at least "
            f"{distances.min_patterns} patterns each; mine more scenarios per task, or ask for fewer "
            "patterns per task (min_patterns)."
        )
    every = matrix[finite]
    rng = np.random.default_rng(seed)
    n_a, n_b = matrix.shape
    out = []
    for label in labels:
        in_a = np.array([label in labels_a.get(h, []) for h in distances.heads_a])
        in_b = np.array([label in labels_b.get(h, []) for h in distances.heads_b])
        same = np.outer(in_a, in_b) & finite
        hits = 0
        for row in np.flatnonzero(in_a):
            values = np.where(finite[row], matrix[row], np.inf)
            hits += bool(np.isfinite(values).any() and in_b[int(np.argmin(values))])
        estimates = _aucs(matrix, finite, np.outer(in_a, in_b))
        draws: list[tuple[float | None, float | None]] = []
        if estimates != (None, None):
            for _ in range(resamples):
                rows, cols = rng.integers(0, n_a, n_a), rng.integers(0, n_b, n_b)
                draws.append(
                    _aucs(
                        matrix[np.ix_(rows, cols)],
                        finite[np.ix_(rows, cols)],
                        np.outer(in_a[rows], in_b[cols]),
                    )
                )
        auc, row_auc = (_interval(estimates[k], [d[k] for d in draws]) for k in (0, 1))
        out.append(
            LabelAgreement(
                label=label,
                heads_a=int(in_a.sum()),
                heads_b=int(in_b.sum()),
                mean_same=float(matrix[same].mean()) if same.any() else None,
                mean_all=float(every.mean()),
                auc=auc,
                row_auc=row_auc,
                nearest_hits=hits,
                chance=float(in_b.mean()) if n_b else 0.0,
            )
        )
    return out
