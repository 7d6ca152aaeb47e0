"""What the gallery's cluster panel says about each cluster of a head: labels from its members' head-type
scores (the head-profile rule: median over the members where a score applies, against the score's
threshold), typical example members, and its members' correctness against the head's overall rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnlens.analysis.head_profiles import ScoreProfile, score_profile
from attnlens.analysis.stats import Interval, wilson_interval
from attnlens.contracts.head_scores import SCORE_NAMES, head_score
from attnlens.store.cluster_members import ClusterMembers


@dataclass(frozen=True)
class Correctness:
    """First-token correctness of a set of patterns' inferences (those with a ground truth)."""

    correct: int
    known: int
    interval: Interval | None  # Wilson 95%; None without any known row

    @property
    def rate(self) -> float | None:
        return self.correct / self.known if self.known else None


def correctness(values: np.ndarray) -> Correctness:
    known = values[~np.isnan(values)]
    correct = int(known.sum())
    return Correctness(correct, int(known.size), wilson_interval(correct, known.size) if known.size else None)


@dataclass(frozen=True)
class ClusterDescription:
    label: int
    size: int
    scores: dict[str, ScoreProfile]
    labels: list[str]  # score names whose label the cluster carries, strongest first
    examples: list[int]  # pattern ids: the medoid, then the members nearest it
    correctness: Correctness


def typical_members(embeddings: np.ndarray, ids: np.ndarray, medoid: int | None, count: int) -> list[int]:
    """The medoid (when it is a member) and the members nearest to it by cosine, `count` in all; without a
    medoid (noise), the members nearest the members' mean direction."""
    if len(ids) == 0:
        return []
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    where = np.flatnonzero(ids == medoid) if medoid is not None else np.zeros(0, dtype=np.int64)
    centre = unit[where[0]] if where.size else unit.mean(axis=0)
    order = np.argsort(-(unit @ centre), kind="stable")
    return [int(ids[i]) for i in order[:count]]


def describe_clusters(
    members: ClusterMembers, medoids: dict[int, int | None], examples: int = 3
) -> tuple[list[ClusterDescription], Correctness]:
    """One description per cluster label in `medoids` (label -> medoid pattern id), and the correctness of
    all the head's clustered patterns (the baseline each cluster's rate is read against)."""
    out = []
    for label, medoid in medoids.items():
        mask = members.labels == label
        scores = {name: score_profile(name, members.scores[name][mask]) for name in SCORE_NAMES}
        passed = [s for s in scores.values() if s.labelled and s.median is not None]
        passed.sort(key=lambda s: -(s.median or 0.0) / head_score(s.name).threshold)
        out.append(
            ClusterDescription(
                label=label,
                size=int(mask.sum()),
                scores=scores,
                labels=[s.name for s in passed],
                examples=typical_members(
                    members.embeddings[mask], members.pattern_ids[mask], medoid, examples
                ),
                correctness=correctness(members.correct[mask]),
            )
        )
    return out, correctness(members.correct)
