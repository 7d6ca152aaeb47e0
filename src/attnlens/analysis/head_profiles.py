"""Head profiles: each head's distribution of every head-type score over the atlas, and the labels those
distributions support.

A profile is per score: how many of the head's patterns it applies to, the median and the deciles. A head
gets a score's label when its median reaches the score's fixed threshold (`contracts.head_scores`); the
evidence shown with a label is the head's median, its interquartile range and the median head's median
for the same score (the baseline: what "typical" is in this model). Labels are hypotheses about what a
head does on these inputs, not facts about the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnlens.contracts.head_scores import HEAD_SCORES, SCORE_NAMES, head_score
from attnlens.heads import HeadRef
from attnlens.store.head_scores import ScoreTable

DECILES = tuple(round(0.1 * i, 1) for i in range(1, 10))  # 10th ... 90th percentile


@dataclass(frozen=True)
class ScoreProfile:
    """One score's distribution over one head's patterns (those it applies to)."""

    name: str
    n_applicable: int  # patterns of the head whose input the score applies to
    median: float | None  # None when it applied to none
    deciles: tuple[float, ...] | None  # 10th..90th percentiles
    labelled: bool  # median >= the score's threshold


@dataclass(frozen=True)
class HeadProfile:
    head: HeadRef
    n_patterns: int
    scores: dict[str, ScoreProfile]

    @property
    def labels(self) -> list[str]:
        """The score names whose label this head carries, strongest first (median over threshold)."""
        passed = [s for s in self.scores.values() if s.labelled and s.median is not None]
        passed.sort(key=lambda s: -(s.median or 0.0) / head_score(s.name).threshold)
        return [s.name for s in passed]

    def median(self, name: str) -> float | None:
        return self.scores[name].median


@dataclass(frozen=True)
class HeadProfiles:
    """Every head of one model with patterns in the table, in (layer, head) order."""

    model_name: str
    n_layers: int
    n_heads: int
    n_inferences: int
    n_inferences_unscored: int
    heads: dict[HeadRef, HeadProfile]
    typical: dict[str, float | None]  # per score, the median over heads of each head's median

    def get(self, ref: HeadRef) -> HeadProfile | None:
        return self.heads.get(ref)


def score_profile(name: str, values: np.ndarray) -> ScoreProfile:
    """One score's profile over `values` (NaN = does not apply), labelled against its threshold."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return ScoreProfile(name, 0, None, None, False)
    quantiles = np.quantile(present, (0.5, *DECILES))
    median = float(quantiles[0])
    return ScoreProfile(
        name=name,
        n_applicable=int(present.size),
        median=median,
        deciles=tuple(float(v) for v in quantiles[1:]),
        labelled=median >= head_score(name).threshold,
    )


def head_profiles(table: ScoreTable) -> HeadProfiles:
    """Profiles of every head in the table (one pass: rows sorted by head, then split)."""
    n_layers = int(table.layer.max()) + 1 if table.n_patterns else 0
    n_heads = int(table.head.max()) + 1 if table.n_patterns else 0
    key = table.layer * max(n_heads, 1) + table.head
    order = np.argsort(key, kind="stable")
    matrix = np.stack([table.scores[name][order] for name in SCORE_NAMES], axis=1)  # (n, scores)
    keys, starts = np.unique(key[order], return_index=True)
    bounds = [*starts[1:], len(order)] if len(starts) else []
    heads: dict[HeadRef, HeadProfile] = {}
    for head_key, start, stop in zip(keys, starts, bounds, strict=True):
        ref = HeadRef(*divmod(int(head_key), n_heads))
        block = matrix[start:stop]
        heads[ref] = HeadProfile(
            head=ref,
            n_patterns=int(stop - start),
            scores={name: score_profile(name, block[:, i]) for i, name in enumerate(SCORE_NAMES)},
        )
    typical: dict[str, float | None] = {}
    for score in HEAD_SCORES:
        medians = [p.scores[score.name].median for p in heads.values()]
        present = [m for m in medians if m is not None]
        typical[score.name] = float(np.median(present)) if present else None
    return HeadProfiles(
        model_name=table.model_name,
        n_layers=n_layers,
        n_heads=n_heads,
        n_inferences=table.n_inferences,
        n_inferences_unscored=table.n_inferences_unscored,
        heads=heads,
        typical=typical,
    )


def decile_bounds(profile: ScoreProfile, decile: int) -> tuple[float, float]:
    """The value range [low, high] of decile `decile` (1 = lowest tenth ... 10 = highest) of a profile."""
    if profile.deciles is None:
        raise ValueError(f"score {profile.name} applies to none of this head's patterns.")
    edges = (-np.inf, *profile.deciles, np.inf)
    return float(edges[decile - 1]), float(edges[decile])


def related_heads(centroids: dict[HeadRef, np.ndarray], ref: HeadRef, k: int) -> list[tuple[HeadRef, float]]:
    """The `k` heads whose patterns point most the same way in AP-MAE's space as `ref`'s: cosine similarity
    of the heads' mean unit embeddings, highest first (`ref` itself left out)."""
    if ref not in centroids:
        return []
    others = [r for r in centroids if r != ref]
    if not others:
        return []
    matrix = np.stack([centroids[r] for r in others])
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    mine = centroids[ref] / max(float(np.linalg.norm(centroids[ref])), 1e-12)
    similarity = unit @ mine
    order = np.argsort(-similarity, kind="stable")[:k]
    return [(others[i], float(similarity[i])) for i in order]
