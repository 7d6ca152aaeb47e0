"""Cluster assignment for new inferences without UMAP: a k-nearest-neighbour vote (cosine) among the
head's already clustered embeddings.

Per-head UMAP + HDBSCAN is a batch job; a request that analyses one new completion must not refit it.
The new pattern takes the label most common among its k most similar labelled patterns (noise, -1, is a
label like any other), and the share of the k votes it got says how sure the assignment is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from attnlens.errors import InsufficientData, InvalidInput


@dataclass(frozen=True)
class ClusterAssignment:
    """Labels for query rows with the share of the k neighbour votes each won."""

    labels: np.ndarray  # (q,) int64
    vote_share: np.ndarray  # (q,) float32 in (0, 1]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class ClusterAssigner:
    """An in-memory exact cosine index over one head's labelled embeddings."""

    def __init__(self, embeddings: np.ndarray, labels: np.ndarray, k: int) -> None:
        x = np.asarray(embeddings)
        y = np.asarray(labels, dtype=np.int64)
        if x.ndim != 2 or y.shape != (len(x),):
            raise InvalidInput(f"need (n, d) embeddings and n labels; got {x.shape} and {y.shape}.")
        if len(x) == 0:
            raise InsufficientData("no labelled embeddings for this head; cluster the head first.")
        if k < 1:
            raise InvalidInput(f"k must be at least 1, got {k}.")
        self.dim = x.shape[1]
        self.k = min(k, len(x))
        # Labels are mapped to 0..C-1 so votes can be counted with one bincount-like scatter.
        self.classes, self._codes = np.unique(y, return_inverse=True)
        self._index = faiss.IndexFlatIP(self.dim)
        self._index.add(_unit_rows(x))

    def assign(self, queries: np.ndarray) -> ClusterAssignment:
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise InvalidInput(f"queries must have {self.dim} columns, got shape {q.shape}.")
        similarity, neighbour = self._index.search(_unit_rows(q), self.k)  # both (q, k)
        codes = self._codes[neighbour]
        n_classes = len(self.classes)
        votes = np.zeros((len(q), n_classes), dtype=np.float64)
        similarity_sum = np.zeros_like(votes)
        rows = np.repeat(np.arange(len(q)), self.k)
        np.add.at(votes, (rows, codes.ravel()), 1.0)
        np.add.at(similarity_sum, (rows, codes.ravel()), similarity.ravel().astype(np.float64))
        # Most votes wins; a tie goes to the label whose voters are more similar in total. Similarity sums
        # lie in [-k, k], so scaling votes by 2k + 1 makes the order lexicographic.
        score = votes * (2 * self.k + 1) + (similarity_sum + self.k) * (votes > 0)
        best = np.argmax(score, axis=1)
        share = votes[np.arange(len(q)), best] / self.k
        return ClusterAssignment(labels=self.classes[best], vote_share=share.astype(np.float32))


def assign_clusters(
    labelled_embeddings: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: int
) -> ClusterAssignment:
    """One-shot form of `ClusterAssigner(labelled_embeddings, labels, k).assign(queries)`."""
    return ClusterAssigner(labelled_embeddings, labels, k).assign(queries)


def place_on_map(
    map_embeddings: np.ndarray, map_coordinates: np.ndarray, queries: np.ndarray, k: int
) -> np.ndarray:
    """2-D positions (q, 2) for new embeddings without UMAP: the mean map position of each query's k most
    cosine-similar mapped points, so a pasted snippet can be shown on an existing map within a request."""
    x = np.asarray(map_embeddings)
    xy = np.asarray(map_coordinates, dtype=np.float32)
    q = np.asarray(queries)
    if q.ndim == 1:
        q = q[None, :]
    if x.ndim != 2 or xy.shape != (len(x), 2):
        raise InvalidInput(f"need (n, d) embeddings and (n, 2) coordinates; got {x.shape} and {xy.shape}.")
    if len(x) == 0:
        raise InsufficientData("the map has no points yet; build the map first.")
    if q.ndim != 2 or q.shape[1] != x.shape[1]:
        raise InvalidInput(f"queries must have {x.shape[1]} columns, got shape {q.shape}.")
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(_unit_rows(x))
    _, neighbour = index.search(_unit_rows(q), min(k, len(x)))  # (q, k)
    return xy[neighbour].mean(axis=1)


@dataclass(frozen=True)
class HoldoutAgreement:
    """How often the kNN vote gives held-out rows the label their clustering gave them."""

    agree: int  # held-out rows whose voted label equals their own label
    held_out: int  # rows held out (0: too few rows to hold any out)
    majority_agree: int = 0  # baseline: held-out rows whose label is the reference rows' most common one


def holdout_agreement(
    embeddings: np.ndarray,
    labels: np.ndarray,
    k: int,
    *,
    seed: int | Sequence[int],
    holdout: float = 0.2,
    max_reference: int | None = None,
) -> HoldoutAgreement:
    """Hold out a seeded `holdout` share of one head's labelled rows (noise, -1, is a label like any other,
    as in `ClusterAssigner`), assign them by a `ClusterAssigner` over the other rows (at most
    `max_reference` of them, a seeded sample, as a request's assigner keeps), and count the agreements,
    and, as a baseline, how many held-out rows have the reference rows' most common label."""
    x = np.asarray(embeddings)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or y.shape != (len(x),):
        raise InvalidInput(f"need (n, d) embeddings and n labels; got {x.shape} and {y.shape}.")
    if not 0.0 < holdout < 1.0:
        raise InvalidInput(f"holdout must lie in (0, 1), got {holdout}.")
    n_held = int(round(holdout * len(x)))
    if n_held < 1 or n_held >= len(x):
        return HoldoutAgreement(agree=0, held_out=0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    held, reference = order[:n_held], order[n_held:]
    if max_reference is not None and len(reference) > max_reference:
        reference = rng.choice(reference, size=max_reference, replace=False)
    voted = ClusterAssigner(x[reference], y[reference], k).assign(x[held]).labels
    values, counts = np.unique(y[reference], return_counts=True)
    return HoldoutAgreement(
        agree=int(np.sum(voted == y[held])),
        held_out=n_held,
        majority_agree=int(np.sum(y[held] == values[np.argmax(counts)])),
    )
