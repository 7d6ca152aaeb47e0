"""Pattern families in the database: the rows a family run reads (every pattern of a model's analysed
atlas with its embedding, head, completion, task and correctness), writing a run with its families and
every pattern's assignment in bulk, and the reads behind the API: the newest finished run of a model, its
families, one family, the families of given patterns and of every point of a map.

A run counts as finished when its `parameters["complete"]` is true; readers use only finished runs (a
cancelled or crashed job leaves an unfinished one, which the next attempt of the same job replaces).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.orm import Session, selectinload

from attnlens.store.analysis_rows import Selection
from attnlens.store.codecs import unpack_embeddings
from attnlens.store.engine import Store
from attnlens.store.models import (
    FamilyAssignment,
    FamilyRun,
    HeadPattern,
    Inference,
    MapPoint,
    PatternFamily,
    Scenario,
)
from attnlens.store.patterns import driver_rows

_READ_PAGE = 50_000
_LOOKUP_CHUNK = 500
_RECENT = 50  # how far back "the newest finished run" looks
NO_FAMILY = -2  # in `map_family_labels`: a map point the run did not assign (noise is -1)


@dataclass(frozen=True)
class FamilyRows:
    """Every pattern a family run covers, in pattern-id order."""

    pattern_ids: np.ndarray  # (n,) int64
    embeddings: np.ndarray  # (n, dim) float32
    layer: np.ndarray  # (n,) int64
    head: np.ndarray  # (n,) int64
    inference: np.ndarray  # (n,) int64
    task: list[str]
    correct: np.ndarray  # (n,) int8: 1 first token right, 0 wrong, -1 no ground truth (NULL)


def _pages(session: Session, selection: Selection, page: int) -> Iterator[list[Any]]:
    columns: tuple[Any, ...] = (HeadPattern.id, HeadPattern.embedding, HeadPattern.layer, HeadPattern.head,
               HeadPattern.inference_id, Scenario.task, Inference.first_token_correct)  # fmt: skip
    joined: Select[Any] = (
        select(*columns)
        .join(Inference, Inference.id == HeadPattern.inference_id)
        .join(Scenario, Scenario.id == Inference.scenario_id)
    )
    query = selection.where(joined)
    last = 0
    while True:
        rows = session.execute(query.where(HeadPattern.id > last).order_by(HeadPattern.id).limit(page)).all()
        if not rows:
            return
        yield list(rows)
        last = int(rows[-1][0])


def load_family_rows(session: Session, selection: Selection, page: int = _READ_PAGE) -> FamilyRows:
    """Every pattern of the selection (a model's mined atlas under one embedder), read in keyset pages."""
    ids: list[np.ndarray] = []
    vectors: list[np.ndarray] = []
    numbers: list[np.ndarray] = []
    tasks: list[str] = []
    for rows in _pages(session, selection, page):
        ids.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
        vectors.append(unpack_embeddings([r[1] for r in rows]))
        numbers.append(
            np.array(
                [(r[2], r[3], r[4], -1 if r[6] is None else int(bool(r[6]))) for r in rows], dtype=np.int64
            )
        )
        tasks.extend(str(r[5]) for r in rows)
    if not ids:
        empty = np.zeros(0, dtype=np.int64)
        return FamilyRows(empty, np.zeros((0, 0), np.float32), empty, empty, empty, [], empty.astype(np.int8))
    table = np.concatenate(numbers)
    return FamilyRows(
        pattern_ids=np.concatenate(ids),
        embeddings=np.concatenate(vectors),
        layer=table[:, 0],
        head=table[:, 1],
        inference=table[:, 2],
        task=tasks,
        correct=table[:, 3].astype(np.int8),
    )


# -- writes ------------------------------------------------------------------------------------------------


def create_family_run(
    store: Store, selection: Selection, parameters: dict[str, Any], job_id: int | None
) -> int:
    """A new run of `job_id`; unfinished runs an earlier attempt of the same job left are deleted first (a
    family fit is one piece: a requeued job starts it again)."""
    with store.session() as session:
        if job_id is not None:
            session.execute(
                delete(FamilyRun).where(
                    FamilyRun.job_id == job_id, FamilyRun.id.in_(_unfinished_runs(session, job_id))
                )
            )
        row = FamilyRun(
            model_name=selection.model_name, embedder=selection.embedder, parameters=parameters, job_id=job_id
        )
        session.add(row)
        session.flush()
        return int(row.id)


def _unfinished_runs(session: Session, job_id: int) -> list[int]:
    rows = session.execute(select(FamilyRun.id, FamilyRun.parameters).where(FamilyRun.job_id == job_id)).all()
    return [int(run_id) for run_id, parameters in rows if not (parameters or {}).get("complete")]


@dataclass(frozen=True)
class FamilyRow:
    """One family as the job found it."""

    label: int
    size: int
    medoid_pattern_id: int | None
    summary: dict[str, Any]


def save_families(store: Store, run_id: int, families: Sequence[FamilyRow]) -> None:
    """A run's families, in one transaction."""
    values = [
        {"family_run_id": run_id, "label": f.label, "size": f.size,
         "medoid_head_pattern_id": f.medoid_pattern_id, "summary": f.summary}
        for f in families
    ]  # fmt: skip
    if values:
        with store.session() as session:
            session.execute(insert(PatternFamily), values)


def save_family_assignments(
    store: Store, run_id: int, pattern_ids: np.ndarray, labels: np.ndarray, vote_share: np.ndarray
) -> None:
    """One chunk of a run's assignments in one transaction (one executemany); `vote_share` NaN is stored as
    NULL (the label came from the fit)."""
    shares = np.asarray(vote_share, dtype=np.float64).tolist()
    values = [
        {"family_run_id": run_id, "head_pattern_id": pid, "label": label,
         "vote_share": None if math.isnan(share) else share}
        for pid, label, share in zip(pattern_ids.tolist(), labels.tolist(), shares, strict=True)
    ]  # fmt: skip
    if values:
        with store.session() as session:
            session.execute(insert(FamilyAssignment), values)


def delete_family_run(store: Store, run_id: int) -> None:
    """Delete a run with its families and assignments (a cancelled job's half-written one)."""
    with store.session() as session:
        session.execute(delete(FamilyRun).where(FamilyRun.id == run_id))


def mark_run_complete(store: Store, run_id: int, **extra: Any) -> None:
    """Mark a run finished (readers use only finished ones), adding `extra` parameters."""
    with store.session() as session:
        row = session.get(FamilyRun, run_id)
        if row is not None:
            row.parameters = {**(row.parameters or {}), **extra, "complete": True}


# -- reads -------------------------------------------------------------------------------------------------


def latest_family_run(store: Store, model_name: str) -> FamilyRun | None:
    """The newest finished run of a model (detached), or None."""
    with store.session() as session:
        for row in session.scalars(
            select(FamilyRun)
            .where(FamilyRun.model_name == model_name)
            .order_by(FamilyRun.id.desc())
            .limit(_RECENT)
        ):
            if (row.parameters or {}).get("complete"):
                return row
    return None


def run_families(session: Session, run_id: int) -> list[PatternFamily]:
    """A run's families by label (0: the largest)."""
    query = select(PatternFamily).where(PatternFamily.family_run_id == run_id).order_by(PatternFamily.label)
    return list(session.scalars(query).all())


def family_of_run(session: Session, run_id: int, label: int) -> PatternFamily | None:
    return session.scalar(
        select(PatternFamily).where(PatternFamily.family_run_id == run_id, PatternFamily.label == label)
    )


def family_labels(session: Session, run_id: int, pattern_ids: Sequence[int]) -> dict[int, int]:
    """Pattern id -> family label (-1: noise) in a run, for the ids it assigned."""
    out: dict[int, int] = {}
    ids = [int(i) for i in pattern_ids]
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        rows = session.execute(
            select(FamilyAssignment.head_pattern_id, FamilyAssignment.label).where(
                FamilyAssignment.family_run_id == run_id,
                FamilyAssignment.head_pattern_id.in_(ids[start : start + _LOOKUP_CHUNK]),
            )
        ).all()
        out.update((int(pid), int(label)) for pid, label in rows)
    return out


def assignment_counts(session: Session, run_id: int) -> tuple[int, int]:
    """(patterns assigned, of them noise) in a run."""
    total, noise = session.execute(
        select(func.count(), func.count().filter(FamilyAssignment.label < 0)).where(
            FamilyAssignment.family_run_id == run_id
        )
    ).one()
    return int(total or 0), int(noise or 0)


def map_family_labels(session: Session, run_id: int, map_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(pattern ids, family labels) of every point of map `map_id` in pattern-id order: -1 noise,
    `NO_FAMILY` (-2) for a point the run did not assign. Read straight off the driver (a map has up to
    hundreds of thousands of points)."""
    statement = (
        select(MapPoint.head_pattern_id, func.coalesce(FamilyAssignment.label, NO_FAMILY))
        .outerjoin(
            FamilyAssignment,
            (FamilyAssignment.head_pattern_id == MapPoint.head_pattern_id)
            & (FamilyAssignment.family_run_id == run_id),
        )
        .where(MapPoint.pattern_map_id == map_id)
        .order_by(MapPoint.head_pattern_id)
    )
    pairs = driver_rows(session, statement)
    return pairs[:, 0], pairs[:, 1]


def patterns_for_thumbnails(session: Session, pattern_ids: Sequence[int]) -> dict[int, HeadPattern]:
    """Head patterns by id with their inference and scenario loaded (what a thumbnail card shows), in a
    few queries however many there are."""
    ids = list(dict.fromkeys(int(i) for i in pattern_ids))
    out: dict[int, HeadPattern] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        rows = session.scalars(
            select(HeadPattern)
            .where(HeadPattern.id.in_(ids[start : start + _LOOKUP_CHUNK]))
            .options(selectinload(HeadPattern.inference).selectinload(Inference.scenario))
        ).all()
        out.update((row.id, row) for row in rows)
    return out
