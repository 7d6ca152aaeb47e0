"""Per head and task, the first two moments of a model's mined AP-MAE embeddings in one embedding space:
what comparing heads across models needs, read in keyset pages so memory is bounded by heads x tasks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from attnlens.errors import InvalidInput, NotFound
from attnlens.heads import HeadRef
from attnlens.store.codecs import unpack_embeddings
from attnlens.store.inferences import atlas_models
from attnlens.store.models import MINED, HeadPattern, Inference, Scenario
from attnlens.store.patterns import keyset_pages


@dataclass(frozen=True)
class HeadTaskMoments:
    """Unit-normalised embeddings summarised per (head, task): counts, means and per-dimension variances.
    Heads are in (layer, head) order; a (head, task) with no pattern has count 0 and zero moments."""

    model_name: str
    embedder: str | None
    heads: tuple[HeadRef, ...]
    tasks: tuple[str, ...]
    counts: Int[np.ndarray, "head task"]
    means: Float[np.ndarray, "head task dim"]
    variances: Float[np.ndarray, "head task dim"]

    @property
    def n_patterns(self) -> int:
        return int(self.counts.sum())


def model_embedders(session: Session, model_name: str) -> dict[str | None, int]:
    """The AP-MAE checkpoints a model's mined inferences are embedded with, and how many inferences each."""
    query = (
        select(Inference.embedder, func.count())
        .where(Inference.model_name == model_name, Inference.source == MINED)
        .group_by(Inference.embedder)
    )
    return {embedder: int(n) for embedder, n in session.execute(query)}


def shared_embedder(session: Session, model_name: str, other: str) -> str | None:
    """The AP-MAE checkpoint both models' mined patterns are embedded with (the one with the most
    inferences when several are); `NotFound` for a model without mined inferences, `InvalidInput` when the
    two share no checkpoint (their vectors are not comparable)."""
    models = atlas_models(session)
    for name in (model_name, other):
        if name not in models:
            raise NotFound(f"model {name!r} has no mined inferences in the atlas; models: {models}.")
    mine, theirs = model_embedders(session, model_name), model_embedders(session, other)
    shared = sorted(set(mine) & set(theirs), key=lambda e: -(mine[e] + theirs[e]))
    if not shared:
        raise InvalidInput(
            f"{model_name} and {other} are embedded with different AP-MAE checkpoints "
            f"({sorted(map(str, mine))} and {sorted(map(str, theirs))}): their vectors are not comparable. "
            "Build both with one checkpoint."
        )
    return shared[0]


def head_task_moments(
    session: Session, model_name: str, embedder: str | None, batch_size: int = 50_000
) -> HeadTaskMoments:
    """The moments of every mined pattern of `model_name` embedded by `embedder` (one embedding space)."""
    same_embedder = Inference.embedder.is_(None) if embedder is None else Inference.embedder == embedder
    mined = (
        select(Inference.id)
        .where(Inference.model_name == model_name, Inference.source == MINED, same_embedder)
        .scalar_subquery()
    )
    base = (
        select(HeadPattern.id, HeadPattern.layer, HeadPattern.head, Scenario.task, HeadPattern.embedding)
        .join(Inference, Inference.id == HeadPattern.inference_id)
        .join(Scenario, Scenario.id == Inference.scenario_id)
        .where(HeadPattern.inference_id.in_(mined))
    )
    sums: dict[tuple[int, int, str], np.ndarray] = {}
    squares: dict[tuple[int, int, str], np.ndarray] = {}
    counts: dict[tuple[int, int, str], int] = {}
    for rows in keyset_pages(session, base, batch_size):
        vectors = unpack_embeddings([r[4] for r in rows]).astype(np.float64)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        keys = [(int(r[1]), int(r[2]), str(r[3])) for r in rows]
        order: dict[tuple[int, int, str], list[int]] = {}
        for i, key in enumerate(keys):
            order.setdefault(key, []).append(i)
        for key, members in order.items():
            chunk = vectors[members]
            sums[key] = sums.get(key, 0) + chunk.sum(axis=0)
            squares[key] = squares.get(key, 0) + (chunk * chunk).sum(axis=0)
            counts[key] = counts.get(key, 0) + len(members)
    heads = tuple(sorted({HeadRef(k[0], k[1]) for k in counts}))
    tasks = tuple(sorted({k[2] for k in counts}))
    dim = next(iter(sums.values())).shape[0] if sums else 0
    count = np.zeros((len(heads), len(tasks)), dtype=np.int64)
    mean = np.zeros((len(heads), len(tasks), dim))
    variance = np.zeros((len(heads), len(tasks), dim))
    head_at = {h: i for i, h in enumerate(heads)}
    task_at = {t: j for j, t in enumerate(tasks)}
    for key, n in counts.items():
        i, j = head_at[HeadRef(key[0], key[1])], task_at[key[2]]
        count[i, j] = n
        mean[i, j] = sums[key] / n
        variance[i, j] = np.maximum(squares[key] / n - mean[i, j] ** 2, 0.0)
    return HeadTaskMoments(model_name, embedder, heads, tasks, count, mean, variance)
