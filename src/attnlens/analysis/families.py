"""Pattern families: ONE clustering of the AP-MAE embeddings of every head's patterns of a model together,
so that a family groups alike patterns wherever they occur (heads, layers, tasks), unlike the per-head
clusters of `analysis.clustering`, whose ids are local to a head.

1. Fit: a seeded sample of `family_fit_sample` patterns is de-duplicated with a small jitter, reduced by
   UMAP (the per-head settings: `umap_components`, `umap_neighbors`, `umap_min_dist`, `umap_metric`) and
   clustered by HDBSCAN (`hdbscan_min_samples`, `family_min_cluster_size`; one family of everything is not
   allowed: it would say nothing). Label -1 is noise: a pattern in no family.
2. Assign: every other pattern gets the label most common among its `knn_k` most cosine-similar sample
   patterns (`analysis.assign.ClusterAssigner`; noise is a label like any other) and the share of the votes
   it won. Families are then renumbered by size, largest first (family 0 is the largest).
3. Summarise, per family: its size; its medoid (least total distance to the other members, in the original
   embedding space) and the members nearest the medoid as examples; per head-type score the median over
   the members it applies to, and the score's label when that median reaches its threshold (the rule and
   the helper of `analysis.head_profiles`); members per layer, head and task; and the first-token
   correctness of its members' completions, each completion counted ONCE however many of its heads' patterns
   are members (the patterns of one completion are not independent trials), with a Wilson 95% interval,
   to be read against the same rate over every completion of the atlas.

Pure numpy / scikit-learn / UMAP (FAISS through `assign`); deterministic for `settings.seed`. UMAP compiles
with numba on first use in a process: call this in jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from attnlens.analysis.assign import ClusterAssigner
from attnlens.analysis.clustering import (
    NOISE,
    cluster_medoids,
    hdbscan_labels,
    jitter_duplicates,
    minimum_points,
    reduce_with_umap,
)
from attnlens.analysis.head_profiles import ScoreProfile, score_profile
from attnlens.analysis.stats import wilson_interval
from attnlens.config import AnalysisSettings
from attnlens.contracts.head_scores import head_score
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef

NOT_COUNTED = -1  # `correct` of a row whose completion has no usable ground truth
TOP_HEADS = 10


@dataclass(frozen=True)
class FamilyFit:
    """Every row's family (-1: noise) and how it got it."""

    labels: np.ndarray  # (n,) int64; families numbered by size, 0 the largest
    vote_share: np.ndarray  # (n,) float32: share of the kNN votes won; NaN for rows of the fit sample
    fit_rows: np.ndarray  # (m,) int64, sorted: the rows UMAP + HDBSCAN were fitted on
    reason: str | None = None  # set when no family could be found (every row is noise)

    @property
    def n_families(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size and self.labels.max() >= 0 else 0


def family_settings(settings: AnalysisSettings) -> AnalysisSettings:
    """The settings the family fit runs `reduce_with_umap` and `hdbscan_labels` with."""
    return settings.model_copy(
        update={
            "hdbscan_min_cluster_size": settings.family_min_cluster_size,
            "hdbscan_allow_single_cluster": False,
        }
    )


def _by_size(labels: np.ndarray) -> np.ndarray:
    """The labels renumbered 0, 1, ... by decreasing size (ties: the smaller old label first); noise stays."""
    real = labels[labels != NOISE]
    if real.size == 0:
        return labels.copy()
    old, counts = np.unique(real, return_counts=True)
    order = np.lexsort((old, -counts))
    mapping = np.full(int(old.max()) + 1, NOISE, dtype=np.int64)
    mapping[old[order]] = np.arange(len(old))
    out = labels.copy()
    keep = labels != NOISE
    out[keep] = mapping[labels[keep]]
    return out


def fit_families(
    embeddings: np.ndarray,
    settings: AnalysisSettings,
    *,
    chunk_rows: int = 20_000,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FamilyFit | None:
    """Families of (n, d) embeddings: fit on a seeded sample, the rest assigned by kNN vote in chunks.

    `on_progress(done, n)` is called after the fit and after each chunk; `should_stop()` is asked before
    each chunk, and a True answer returns None (nothing half-assigned is returned)."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidInput(f"family embeddings must be a 2-D (n, d) array, got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise InvalidInput("embeddings contain NaN or infinite values; re-embed those patterns first.")
    n = len(x)
    fit_settings = family_settings(settings)
    rng = np.random.default_rng(settings.seed)
    fit_rows = np.sort(rng.choice(n, size=min(n, settings.family_fit_sample), replace=False)).astype(np.int64)
    labels = np.full(n, NOISE, dtype=np.int64)
    share = np.full(n, np.nan, dtype=np.float32)
    needed = minimum_points(fit_settings)
    if len(fit_rows) < needed:
        too_few = (
            f"{n} patterns; finding families needs at least {needed} in the fit sample "
            "(family_min_cluster_size, UMAP n_neighbors + 1): all marked noise."
        )
        return FamilyFit(labels, share, fit_rows, too_few)
    distinct = jitter_duplicates(x[fit_rows], settings.dedup_jitter, rng)
    sample_labels = hdbscan_labels(reduce_with_umap(distinct, fit_settings), fit_settings)
    labels[fit_rows] = sample_labels
    if on_progress is not None:
        on_progress(len(fit_rows), n)
    rest = np.setdiff1d(np.arange(n), fit_rows, assume_unique=True)
    if len(rest):
        assigner = ClusterAssigner(x[fit_rows], sample_labels, settings.knn_k)
        for start in range(0, len(rest), chunk_rows):
            if should_stop is not None and should_stop():
                return None
            rows = rest[start : start + chunk_rows]
            voted = assigner.assign(x[rows])
            labels[rows] = voted.labels
            share[rows] = voted.vote_share
            if on_progress is not None:
                on_progress(len(fit_rows) + start + len(rows), n)
    reason: str | None = None
    if not np.any(sample_labels != NOISE):
        reason = (
            f"HDBSCAN found no family of at least {settings.family_min_cluster_size} patterns in the "
            f"{len(fit_rows)}-pattern fit sample: every pattern is noise. Lower family_min_cluster_size."
        )
    return FamilyFit(_by_size(labels), share, fit_rows, reason)


# -- summaries ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """A proportion with its Wilson 95% interval."""

    successes: int
    trials: int
    estimate: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def rate_of(successes: int, trials: int) -> Rate | None:
    """`successes` of `trials` with its Wilson 95% interval; None for no trials."""
    if trials == 0:
        return None
    interval = wilson_interval(successes, trials)
    return Rate(successes, trials, interval.estimate, interval.low, interval.high)


@dataclass(frozen=True)
class RowAttributes:
    """What is known of each row (pattern) besides its embedding; every array has one entry per row."""

    layer: np.ndarray  # (n,) int
    head: np.ndarray  # (n,) int
    inference: np.ndarray  # (n,) int: the completion the pattern belongs to
    task: Sequence[str]  # (n,)
    correct: np.ndarray  # (n,) int8: 1 first token right, 0 wrong, NOT_COUNTED (-1) no usable ground truth
    scores: Mapping[str, np.ndarray]  # score name -> (n,) float64, NaN where it does not apply or is unknown
    scored: np.ndarray  # (n,) bool: the row's completion has current head-type scores

    def check(self, n: int) -> None:
        columns = {"layer": self.layer, "head": self.head, "inference": self.inference, "task": self.task,
                   "correct": self.correct, "scored": self.scored, **self.scores}  # fmt: skip
        for name, values in columns.items():
            if len(values) != n:
                raise InvalidInput(
                    f"attribute {name!r} has {len(values)} values for {n} rows; give one per row."
                )


@dataclass(frozen=True)
class FamilySummary:
    """One family: how large, what it looks like, what its patterns do, where it occurs."""

    label: int
    size: int
    medoid: int  # row index
    examples: tuple[int, ...]  # row indices: the medoid, then the members nearest it
    n_scored: int  # members whose completion has current head-type scores (the score medians' rows)
    scores: dict[str, ScoreProfile]  # per score: members it applies to, median, deciles, labelled
    labels: tuple[str, ...]  # names of the scores whose label the family carries, strongest first
    layers: dict[int, int]  # layer -> members, by layer
    heads: tuple[tuple[str, int], ...]  # the heads with the most members, most first: (name, members)
    n_heads: int  # distinct heads with at least one member
    tasks: dict[str, int]  # task -> members, most first
    n_inferences: int  # distinct completions with at least one member
    correctness: Rate | None  # over those completions with a usable ground truth, each counted once


def score_labels(scores: Mapping[str, np.ndarray]) -> tuple[dict[str, ScoreProfile], tuple[str, ...]]:
    """Per score the profile of its values (NaN: does not apply, left out), and the names of the scores
    whose median reaches their threshold, strongest (median / threshold) first: the rule heads follow."""
    profiles = {
        name: score_profile(name, np.asarray(values, dtype=np.float64)) for name, values in scores.items()
    }
    passed = [p for p in profiles.values() if p.labelled and p.median is not None]
    passed.sort(key=lambda p: (-(p.median or 0.0) / head_score(p.name).threshold, p.name))
    return profiles, tuple(p.name for p in passed)


def completion_rate(inference: np.ndarray, correct: np.ndarray) -> tuple[int, Rate | None]:
    """(distinct completions, their first-token correctness rate): each completion counted once, those with
    `correct` NOT_COUNTED left out of the rate."""
    inference = np.asarray(inference)
    correct = np.asarray(correct)
    distinct = int(np.unique(inference).size)
    keep = correct != NOT_COUNTED
    ids, first = np.unique(inference[keep], return_index=True)
    return distinct, rate_of(int(np.sum(correct[keep][first] == 1)), len(ids))


def _examples(x: np.ndarray, members: np.ndarray, medoid: int, metric: str, k: int) -> tuple[int, ...]:
    """The medoid and the `k - 1` members nearest it (ties: lower row first)."""
    from sklearn.metrics import pairwise_distances

    distance = pairwise_distances(
        x[members].astype(np.float64), x[medoid][None, :].astype(np.float64), metric=metric
    )[:, 0]
    distance[members == medoid] = -np.inf
    order = np.lexsort((members, distance))
    return tuple(int(members[i]) for i in order[:k])


def summarise_families(
    embeddings: np.ndarray,
    labels: np.ndarray,
    rows: RowAttributes,
    *,
    metric: str = "cosine",
    n_examples: int = 6,
    top_heads: int = TOP_HEADS,
) -> list[FamilySummary]:
    """A summary per family (label >= 0), in label order; noise rows are in none."""
    x = np.asarray(embeddings)
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    if x.shape[0] != n:
        raise InvalidInput(f"{x.shape[0]} embeddings for {n} labels; give one label per row.")
    rows.check(n)
    layer = np.asarray(rows.layer, dtype=np.int64)
    head = np.asarray(rows.head, dtype=np.int64)
    inference = np.asarray(rows.inference, dtype=np.int64)
    correct = np.asarray(rows.correct, dtype=np.int8)
    scored = np.asarray(rows.scored, dtype=bool)
    task_names, task_codes = np.unique(np.asarray(rows.task, dtype=str), return_inverse=True)
    n_heads = int(head.max()) + 1 if n else 1
    medoids = cluster_medoids(x, y, metric)
    out = []
    for label in sorted(medoids):
        members = np.flatnonzero(y == label)
        medoid = medoids[label]
        profiles, carried = score_labels({name: values[members] for name, values in rows.scores.items()})
        layers, layer_counts = np.unique(layer[members], return_counts=True)
        keys, key_counts = np.unique(layer[members] * n_heads + head[members], return_counts=True)
        top = np.lexsort((keys, -key_counts))[:top_heads]
        codes, code_counts = np.unique(task_codes[members], return_counts=True)
        by_count = np.lexsort((codes, -code_counts))
        n_inferences, correctness = completion_rate(inference[members], correct[members])
        out.append(
            FamilySummary(
                label=int(label), size=len(members), medoid=int(medoid),
                examples=_examples(x, members, medoid, metric, n_examples),
                n_scored=int(scored[members].sum()), scores=profiles, labels=carried,
                layers={int(a): int(c) for a, c in zip(layers, layer_counts, strict=True)},
                heads=tuple((HeadRef(*divmod(int(keys[i]), n_heads)).name, int(key_counts[i])) for i in top),
                n_heads=len(keys),
                tasks={str(task_names[codes[i]]): int(code_counts[i]) for i in by_count},
                n_inferences=n_inferences, correctness=correctness,
            )
        )  # fmt: skip
    return out
