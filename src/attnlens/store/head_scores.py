"""The head-type scores in the database: which inferences still lack them, writing them back, and reading
every scored pattern of a model as columns (what head profiles are computed from)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from attnlens.contracts.head_scores import HEAD_SCORES_VERSION, RELATIONAL_SCORE_NAMES, SCORE_NAMES
from attnlens.heads import HeadRef
from attnlens.store.codecs import unpack_embeddings
from attnlens.store.engine import Store
from attnlens.store.models import MINED, HeadPattern, Inference
from attnlens.store.patterns import driver_rows, keyset_pages

# Rows per read when loading score columns (keyset pages keep each query cheap).
_PAGE = 100_000


def needs_scores(version: int = HEAD_SCORES_VERSION) -> ColumnElement[bool]:
    """The SQL condition of an inference whose relational scores are missing or from another version."""
    return or_(Inference.head_scores_version.is_(None), Inference.head_scores_version != version)


def inferences_without_scores(
    session: Session, model_name: str, limit: int | None = None
) -> list[tuple[int, str | None]]:
    """(id, embedder) of the model's inferences, mined and pasted, whose scores are not current, by id."""
    query = (
        select(Inference.id, Inference.embedder)
        .where(Inference.model_name == model_name, needs_scores())
        .order_by(Inference.id)
        .limit(limit)
    )
    return [(int(i), embedder) for i, embedder in session.execute(query)]


def count_without_scores(session: Session, model_name: str) -> tuple[int, int]:
    """(inferences lacking current scores, all inferences) of the model."""
    rows = driver_rows(session, select(Inference.id).where(Inference.model_name == model_name))
    missing = driver_rows(
        session, select(Inference.id).where(Inference.model_name == model_name, needs_scores())
    )
    return len(missing), len(rows)


def save_relational_scores(
    store: Store,
    inference_id: int,
    scores: Mapping[HeadRef, Mapping[str, float | None]],
    version: int = HEAD_SCORES_VERSION,
    reconstruction_errors: Mapping[HeadRef, float] | None = None,
) -> bool:
    """Write one inference's relational scores (and reconstruction errors, when given) and mark it
    current, in one transaction; False when the inference was deleted meanwhile (nothing is written)."""
    with store.session(immediate=True) as session:
        inference = session.get(Inference, inference_id)
        if inference is None:
            return False
        rows = session.scalars(select(HeadPattern).where(HeadPattern.inference_id == inference_id)).all()
        for row in rows:
            values = scores.get(row.head_ref, {})
            for name in RELATIONAL_SCORE_NAMES:
                setattr(row, name, values.get(name))
            if reconstruction_errors is not None:
                row.reconstruction_error = reconstruction_errors.get(row.head_ref)
        session.execute(
            update(Inference).where(Inference.id == inference_id).values(head_scores_version=version)
        )
    return True


@dataclass(frozen=True)
class ScoreTable:
    """Every scored mined pattern of one model as columns: `layer`, `head`, and per score one float64
    column with NaN where it does not apply. `inference_ids` says whose patterns they are."""

    model_name: str
    layer: np.ndarray  # (n,) int64
    head: np.ndarray  # (n,) int64
    inference_ids: np.ndarray  # (n,) int64
    pattern_ids: np.ndarray  # (n,) int64
    scores: dict[str, np.ndarray]  # score name -> (n,) float64, NaN = does not apply
    n_inferences: int  # mined inferences of the model with current scores
    n_inferences_unscored: int  # mined inferences whose relational scores are missing (left out)

    @property
    def n_patterns(self) -> int:
        return len(self.layer)


def load_score_table(session: Session, model_name: str, names: Sequence[str] = SCORE_NAMES) -> ScoreTable:
    """The score columns of the model's mined patterns whose inference has current scores. Patterns of
    unscored inferences are left out entirely (their relational NULLs would mean "unknown", not "does not
    apply"), and counted."""
    scored = select(Inference.id).where(
        Inference.model_name == model_name,
        Inference.source == MINED,
        Inference.head_scores_version == HEAD_SCORES_VERSION,
    )
    unscored = select(Inference.id).where(
        Inference.model_name == model_name, Inference.source == MINED, needs_scores()
    )
    columns = [getattr(HeadPattern, name) for name in names]
    base = select(
        HeadPattern.id, HeadPattern.inference_id, HeadPattern.layer, HeadPattern.head, *columns
    ).where(HeadPattern.inference_id.in_(scored))
    pages = [
        np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)
        for rows in keyset_pages(session, base, _PAGE)
    ]
    table = np.concatenate(pages) if pages else np.zeros((0, 4 + len(names)))
    return ScoreTable(
        model_name=model_name,
        pattern_ids=table[:, 0].astype(np.int64),
        inference_ids=table[:, 1].astype(np.int64),
        layer=table[:, 2].astype(np.int64),
        head=table[:, 3].astype(np.int64),
        scores={name: table[:, 4 + i] for i, name in enumerate(names)},
        n_inferences=len(driver_rows(session, scored)),
        n_inferences_unscored=len(driver_rows(session, unscored)),
    )


def scored_fingerprint(store: Store, model_name: str) -> tuple[int, int, int]:
    """What changes when a model's head profiles would: (scored mined inferences, the newest one's id,
    all mined inferences)."""
    with store.session() as session:
        count, newest = session.execute(
            select(func.count(Inference.id), func.max(Inference.id)).where(
                Inference.model_name == model_name,
                Inference.source == MINED,
                Inference.head_scores_version == HEAD_SCORES_VERSION,
            )
        ).one()
        mined = session.scalar(
            select(func.count(Inference.id)).where(
                Inference.model_name == model_name, Inference.source == MINED
            )
        )
    return int(count or 0), int(newest or 0), int(mined or 0)


def patterns_in_range(
    session: Session,
    model_name: str,
    head: HeadRef,
    score: str,
    low: float | None,
    high: float | None,
    limit: int,
) -> tuple[int, list[HeadPattern]]:
    """(how many, the first `limit` by value descending) of the head's scored mined patterns whose `score`
    lies in (low, high] (an open end where None)."""
    column = getattr(HeadPattern, score)
    where = [
        HeadPattern.layer == head.layer,
        HeadPattern.head == head.head,
        column.is_not(None),
        HeadPattern.inference_id.in_(
            select(Inference.id).where(
                Inference.model_name == model_name,
                Inference.source == MINED,
                Inference.head_scores_version == HEAD_SCORES_VERSION,
            )
        ),
    ]
    if low is not None:
        where.append(column > low)
    if high is not None:
        where.append(column <= high)
    total = int(session.scalar(select(func.count(HeadPattern.id)).where(*where)) or 0)
    rows = session.scalars(
        select(HeadPattern).where(*where).order_by(column.desc(), HeadPattern.id).limit(limit)
    ).all()
    return total, list(rows)


def head_centroids(session: Session, model_name: str, batch_size: int = 50_000) -> dict[HeadRef, np.ndarray]:
    """Per head, the mean direction of its mined patterns' AP-MAE embeddings (each normalised to unit
    length first), read in keyset pages so that memory stays bounded by the number of heads."""
    sums: dict[tuple[int, int], np.ndarray] = {}
    counts: dict[tuple[int, int], int] = {}
    mined = select(Inference.id).where(Inference.model_name == model_name, Inference.source == MINED)
    base = select(HeadPattern.id, HeadPattern.layer, HeadPattern.head, HeadPattern.embedding).where(
        HeadPattern.inference_id.in_(mined)
    )
    for rows in keyset_pages(session, base, batch_size):
        vectors = unpack_embeddings([r[3] for r in rows]).astype(np.float64)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        keys = np.array([(r[1], r[2]) for r in rows], dtype=np.int64)
        for key in np.unique(keys, axis=0):
            mask = (keys[:, 0] == key[0]) & (keys[:, 1] == key[1])
            k = (int(key[0]), int(key[1]))
            sums[k] = sums.get(k, 0) + vectors[mask].sum(axis=0)
            counts[k] = counts.get(k, 0) + int(mask.sum())
    return {HeadRef(*k): total / counts[k] for k, total in sorted(sums.items())}
