"""The reads that keep one nearest-neighbour index per embedding space in step with the database.

An embedding space is a (model, embedder) pair: the target model whose attention was embedded
(`inference.model_name`) and the AP-MAE checkpoint that embedded it (`inference.embedder`, NULL on rows
written before it was recorded). Vectors of two spaces are never comparable, so `attnlens.index` keeps
one index per space and every query here takes the pair.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from attnlens.store.codecs import unpack_embeddings
from attnlens.store.models import HeadPattern, Inference
from attnlens.store.patterns import ids_of, keyset_embedding_batches

SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])
# Inferences per query when reading their head patterns: 64 x 270 = 17,280 rows for SmolLM2.
_INFERENCE_CHUNK = 64


@dataclass(frozen=True)
class SpaceRows:
    """What the database holds for one space: how many head patterns, and the largest id among them."""

    count: int
    max_id: int


@dataclass(frozen=True)
class SpaceInferences:
    """A fingerprint of one space's inferences: how many, the sum of their ids and the largest id.

    An inference and its head patterns are written in one transaction, so while this fingerprint is
    unchanged so are the space's head patterns; when only inferences with larger ids were added, the old
    part's count and sum are unchanged and the new ones are exactly `inference_ids_after(max_id)`.
    Reading it costs one pass over the inference table (one row per model run, 270x smaller than the
    head-pattern table for SmolLM2), not over the head patterns.
    """

    count: int = 0
    id_sum: int = 0
    max_id: int = 0


def _inferences_of(model_name: str, embedder: str | None) -> Select[Any]:
    query = select(Inference.id).where(Inference.model_name == model_name)
    if embedder is None:
        return query.where(Inference.embedder.is_(None))
    return query.where(Inference.embedder == embedder)


def _of_space(query: SelectT, model_name: str, embedder: str | None) -> SelectT:
    # `inference_id IN (SELECT ...)` walks the (inference_id, layer, head) index, as PatternFilter does.
    return query.where(HeadPattern.inference_id.in_(_inferences_of(model_name, embedder)))


def space_inferences(session: Session) -> dict[tuple[str, str | None], SpaceInferences]:
    """The inference fingerprint of every (model, embedder) pair that has inferences."""
    rows = session.execute(
        select(
            Inference.model_name,
            Inference.embedder,
            func.count(),
            func.sum(Inference.id),
            func.max(Inference.id),
        ).group_by(Inference.model_name, Inference.embedder)
    ).all()
    return {
        (str(model), embedder): SpaceInferences(int(count), int(id_sum or 0), int(max_id or 0))
        for model, embedder, count, id_sum, max_id in rows
    }


def inference_ids_after(session: Session, model_name: str, embedder: str | None, after_id: int) -> list[int]:
    """The space's inference ids greater than `after_id`, ascending."""
    query = _inferences_of(model_name, embedder).where(Inference.id > after_id).order_by(Inference.id)
    return [int(i) for i in session.scalars(query)]


def count_patterns_of(session: Session, inference_ids: Sequence[int]) -> int:
    """How many head patterns these inferences have (through the inference_id index)."""
    total = 0
    for start in range(0, len(inference_ids), _INFERENCE_CHUNK):
        chunk = list(inference_ids[start : start + _INFERENCE_CHUNK])
        total += int(session.scalar(select(func.count()).where(HeadPattern.inference_id.in_(chunk))) or 0)
    return total


def iter_embeddings_of(
    session: Session, inference_ids: Sequence[int]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The head patterns of these inferences as `(ids (b,) int64, vectors (b, dim) float32)` batches, ids
    ascending within a batch; a few inferences a batch (a build adds many at once)."""
    for start in range(0, len(inference_ids), _INFERENCE_CHUNK):
        chunk = list(inference_ids[start : start + _INFERENCE_CHUNK])
        rows = session.execute(
            select(HeadPattern.id, HeadPattern.embedding)
            .where(HeadPattern.inference_id.in_(chunk))
            .order_by(HeadPattern.id)
        ).all()
        if rows:
            ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            yield ids, unpack_embeddings([row[1] for row in rows])


def space_rows(session: Session, model_name: str, embedder: str | None) -> SpaceRows:
    """Head-pattern count and largest id of one space (an index-only scan of its inferences' rows)."""
    count, max_id = session.execute(
        _of_space(select(func.count(), func.max(HeadPattern.id)), model_name, embedder)
    ).one()
    return SpaceRows(int(count or 0), int(max_id or 0))


def space_patterns_up_to(
    session: Session, model_name: str, embedder: str | None, max_inference_id: int
) -> int:
    """Head patterns of one space's inferences with ids up to `max_inference_id` (what an index synced at
    that inference holds, whatever a writer added since)."""
    inferences = _inferences_of(model_name, embedder).where(Inference.id <= max_inference_id)
    query = select(func.count()).where(HeadPattern.inference_id.in_(inferences))
    return int(session.scalar(query) or 0)


def space_pattern_ids(session: Session, model_name: str, embedder: str | None) -> np.ndarray:
    """Every head-pattern id of one space, sorted (int64)."""
    return ids_of(session, _of_space(select(HeadPattern.id), model_name, embedder))


def space_embedding_dims(session: Session, model_name: str, embedder: str | None) -> list[int]:
    """The distinct embedding widths stored in one space (one, unless a checkpoint changed width)."""
    lengths = session.scalars(
        _of_space(select(func.length(HeadPattern.embedding)).distinct(), model_name, embedder)
    )
    return sorted(int(n) // 2 for n in lengths)  # float16: two bytes a value


def iter_space_embeddings(
    session: Session, model_name: str, embedder: str | None, *, batch_size: int = 50_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every embedding of one space as `(ids (b,) int64, vectors (b, dim) float32)` batches in id order
    (keyset pagination: id > the last batch's largest id)."""
    query = _of_space(select(HeadPattern.id, HeadPattern.embedding), model_name, embedder)
    yield from keyset_embedding_batches(session, query, batch_size)
