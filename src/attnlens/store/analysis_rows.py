"""Database reads and writes behind the analysis jobs: which patterns a model's analyses cover, one head's
embeddings at a time, per-task feature matrices, and writing clusterings, maps and predictors.

Only mined atlas inferences (source `mined`, with a scenario) are analysed: they carry a task, a syntax node
type and a ground truth, and they are the population the analyses describe. Pasted code (source `pasted`)
never enters an analysis, however much of it is stored; it is placed into the finished analyses by kNN
(`attnlens.atlas.prediction`).
Analyses are also restricted to one embedder (AP-MAE checkpoint): embeddings of two checkpoints live in
different spaces, and mixing them would cluster checkpoints, not patterns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from attnlens.contracts.tasks import NOISE_TASK
from attnlens.errors import InsufficientData
from attnlens.heads import HeadRef
from attnlens.store.codecs import unpack_embeddings
from attnlens.store.engine import Store
from attnlens.store.models import (
    MINED,
    Cluster,
    ClusterAssignment,
    Clustering,
    HeadPattern,
    Inference,
    MapPoint,
    PatternMap,
    Predictor,
    PredictorEvaluation,
    Scenario,
)
from attnlens.store.patterns import keyset_embedding_batches

_WRITE_CHUNK = 20_000


@dataclass(frozen=True)
class Selection:
    """The patterns an analysis covers: one model's mined atlas inferences embedded by one checkpoint."""

    model_name: str
    embedder: str | None

    def where(self, query: Select[Any]) -> Select[Any]:
        """Restrict a query that already joins `Inference` (and `Scenario` via an inner join)."""
        query = query.where(
            Inference.model_name == self.model_name,
            Inference.scenario_id.is_not(None),
            Inference.source == MINED,
        )
        if self.embedder is None:
            return query.where(Inference.embedder.is_(None))
        return query.where(Inference.embedder == self.embedder)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model_name, "embedder": self.embedder}


def choose_selection(session: Session, model_name: str) -> Selection:
    """The model's mined atlas inferences under the embedder most of them used; `InsufficientData` if none
    (pasted code alone is no atlas)."""
    counts = session.execute(
        select(Inference.embedder, func.count())
        .where(
            Inference.model_name == model_name,
            Inference.scenario_id.is_not(None),
            Inference.source == MINED,
        )
        .group_by(Inference.embedder)
        .order_by(func.count().desc())
    ).all()
    if not counts:
        raise InsufficientData(
            f"the atlas has no inferences of model {model_name!r}; build one with `attnlens atlas build` "
            "(or pass the model the atlas was built with)."
        )
    return Selection(model_name, counts[0][0])


def _joined(*columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .join(Inference, Inference.id == HeadPattern.inference_id)
        .join(Scenario, Scenario.id == Inference.scenario_id)
    )


def selected_heads(session: Session, selection: Selection) -> list[HeadRef]:
    """Every head with stored patterns in the selection, in (layer, head) order."""
    rows = session.execute(
        selection.where(_joined(HeadPattern.layer, HeadPattern.head))
        .distinct()
        .order_by(HeadPattern.layer, HeadPattern.head)
    ).all()
    return [HeadRef(int(layer), int(head)) for layer, head in rows]


@dataclass(frozen=True)
class HeadRows:
    """One head's patterns in the selection, in pattern-id order."""

    pattern_ids: np.ndarray  # (n,) int64
    embeddings: np.ndarray  # (n, dim) float32
    tasks: list[str]
    node_types: list[str]
    correct: list[str]  # "true", "false" or "unknown" (first-token correctness)


def load_head_rows(session: Session, selection: Selection, head: HeadRef) -> HeadRows:
    """One head's embeddings and attributes.

    The (layer, head) filter runs in SQL, so memory holds one head."""
    rows = session.execute(
        selection.where(
            _joined(
                HeadPattern.id,
                HeadPattern.embedding,
                Scenario.task,
                Scenario.node_type,
                Inference.first_token_correct,
            )
        )
        .where(HeadPattern.layer == head.layer, HeadPattern.head == head.head)
        .order_by(HeadPattern.id)
    ).all()
    correct = ["unknown" if r[4] is None else str(bool(r[4])).lower() for r in rows]
    return HeadRows(
        pattern_ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        embeddings=unpack_embeddings([r[1] for r in rows]),
        tasks=[r[2] for r in rows],
        node_types=[r[3] for r in rows],
        correct=correct,
    )


def iter_selection_embeddings(
    session: Session, selection: Selection, batch_size: int = 50_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids (b,) int64, vectors (b, dim) float32) batches of every pattern in the selection, in id order
    (keyset pagination)."""
    query = selection.where(_joined(HeadPattern.id, HeadPattern.embedding))
    yield from keyset_embedding_batches(session, query, batch_size)


@dataclass(frozen=True)
class TaskRows:
    """One task's inferences as predictor inputs: one row per inference, one column per head."""

    task: str
    inference_ids: np.ndarray  # (rows,) int64
    heads: tuple[HeadRef, ...]
    cluster_ids: np.ndarray  # (rows, head) int64
    embeddings: np.ndarray  # (rows, head, dim) float32
    correct: np.ndarray  # (rows,) bool
    dropped: int  # inferences left out: a head without a pattern or without a cluster label
    # (rows,) int64: each row's prompt (window) length in tokens; empty when not known
    context_tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # (rows, 3) float64: the model's confidence at the hole (top-1 probability, margin, entropy); NaN
    # where the row was built before it was stored
    confidence: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.float64))
    # (rows,) bool: the hole already sat on token boundaries (scenario alignment `exact`, not widened)
    exact_hole: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def task_names(session: Session, selection: Selection) -> list[str]:
    """Tasks with at least one inference in the selection, sorted."""
    query = select(Scenario.task).join(Inference, Inference.scenario_id == Scenario.id).distinct()
    return sorted(session.scalars(selection.where(query)).all())


def load_task_rows(
    session: Session, selection: Selection, task: str, clustering_id: int, heads: Sequence[HeadRef]
) -> TaskRows:
    """Cluster ids and embeddings of every head, and the window length, of the task's inferences with a
    known first-token correctness. The `noise` control has no meaningful ground truth (its targets are
    random tokens), so, as in the paper, its labels alternate correct/incorrect in inference order."""
    column = {ref: i for i, ref in enumerate(heads)}
    query = (
        _joined(HeadPattern.inference_id, HeadPattern.layer, HeadPattern.head, HeadPattern.embedding,
                ClusterAssignment.label, Inference.first_token_correct, Scenario.context_tokens,
                Inference.top1_prob, Inference.top1_margin, Inference.next_token_entropy, Scenario.alignment)
        .outerjoin(
            ClusterAssignment,
            (ClusterAssignment.head_pattern_id == HeadPattern.id)
            & (ClusterAssignment.clustering_id == clustering_id),
        )
        .where(Scenario.task == task)
        .order_by(HeadPattern.inference_id)
    )  # fmt: skip
    if task != NOISE_TASK:
        query = query.where(Inference.first_token_correct.is_not(None))
    rows = session.execute(selection.where(query)).all()
    inference_ids = sorted({int(r[0]) for r in rows})
    position = {inference_id: i for i, inference_id in enumerate(inference_ids)}
    n, n_heads = len(inference_ids), len(heads)
    dim = len(rows[0][3]) // 2 if rows else 0
    cluster_ids = np.full((n, n_heads), -2, dtype=np.int64)  # -2: no label in this clustering
    filled = np.zeros((n, n_heads), dtype=bool)
    blobs: list[bytes] = [b"\x00" * (2 * dim)] * (n * n_heads)
    correct = np.zeros(n, dtype=bool)
    context_tokens = np.zeros(n, dtype=np.int64)
    confidence = np.full((n, 3), np.nan, dtype=np.float64)
    exact_hole = np.zeros(n, dtype=bool)
    for inference_id, layer, head, blob, label, is_correct, n_context, *confident, alignment in rows:
        j = column.get(HeadRef(int(layer), int(head)))
        if j is None:
            continue
        i = position[int(inference_id)]
        blobs[i * n_heads + j] = blob
        filled[i, j] = True
        if label is not None:
            cluster_ids[i, j] = int(label)
        correct[i] = bool(is_correct)
        context_tokens[i] = int(n_context)
        confidence[i] = [np.nan if v is None else float(v) for v in confident]
        exact_hole[i] = alignment == "exact"
    keep = filled.all(axis=1) & (cluster_ids != -2).all(axis=1)
    if task == NOISE_TASK:
        correct = np.arange(n) % 2 == 0
    embeddings = (
        unpack_embeddings(blobs).reshape(n, n_heads, dim) if n else np.zeros((0, n_heads, 0), np.float32)
    )
    return TaskRows(
        task=task,
        inference_ids=np.asarray(inference_ids, dtype=np.int64)[keep],
        heads=tuple(heads),
        cluster_ids=cluster_ids[keep],
        embeddings=embeddings[keep],
        correct=correct[keep],
        dropped=int((~keep).sum()),
        context_tokens=context_tokens[keep],
        confidence=confidence[keep],
        exact_hole=exact_hole[keep],
    )


# -- writes ------------------------------------------------------------------------------------------------


def mark_complete(
    store: Store, table: type[Clustering] | type[PatternMap], row_id: int, **extra: Any
) -> None:
    """Mark a clustering or map finished (readers use only finished ones), adding `extra` parameters."""
    with store.session() as session:
        row = session.get(table, row_id)
        if not isinstance(row, Clustering | PatternMap):
            return
        # A new dict, so SQLAlchemy sees the JSON column change.
        row.parameters = {**(row.parameters or {}), **extra, "complete": True}


def clustering_of_job(store: Store, job_id: int, selection: Selection, parameters: dict[str, Any]) -> int:
    """The clustering row of a job: the one a previous attempt of the job started, or a new one."""
    with store.session() as session:
        existing = session.scalar(
            select(Clustering.id).where(Clustering.job_id == job_id).order_by(Clustering.id.desc())
        )
        if existing is not None:
            return int(existing)
        row = Clustering(
            model_name=selection.model_name, embedder=selection.embedder, parameters=parameters, job_id=job_id
        )
        session.add(row)
        session.flush()
        return row.id


def heads_with_clusters(store: Store, clustering_id: int) -> set[HeadRef]:
    """Heads a clustering already holds (a requeued job resumes after them)."""
    with store.session() as session:
        rows = session.execute(
            select(Cluster.layer, Cluster.head).where(Cluster.clustering_id == clustering_id).distinct()
        )
        return {HeadRef(int(layer), int(head)) for layer, head in rows}


@dataclass(frozen=True)
class ClusterRow:
    """One cluster of a head as the clustering job found it."""

    label: int
    size: int
    medoid_pattern_id: int | None
    attributes: dict[str, Any]


def save_head_clustering(
    store: Store,
    clustering_id: int,
    head: HeadRef,
    clusters: Sequence[ClusterRow],
    pattern_ids: np.ndarray,
    labels: np.ndarray,
) -> None:
    """A head's clusters and every pattern's label, in one transaction."""
    with store.session() as session:
        for c in clusters:
            session.add(
                Cluster(
                    clustering_id=clustering_id, layer=head.layer, head=head.head, label=c.label, size=c.size,
                    medoid_head_pattern_id=c.medoid_pattern_id, attributes=c.attributes,
                )
            )  # fmt: skip
        assignments = [
            {
                "clustering_id": clustering_id,
                "head_pattern_id": int(pid),
                "label": int(label),
                "vote_share": None,
            }
            for pid, label in zip(pattern_ids, labels, strict=True)
        ]
        for start in range(0, len(assignments), _WRITE_CHUNK):
            session.execute(insert(ClusterAssignment), assignments[start : start + _WRITE_CHUNK])


def create_map(store: Store, name: str, parameters: dict[str, Any], job_id: int | None) -> int:
    with store.session() as session:
        row = PatternMap(name=name, parameters=parameters, job_id=job_id)
        session.add(row)
        session.flush()
        return row.id


def save_map_points(
    store: Store, map_id: int, pattern_ids: np.ndarray, coordinates: np.ndarray, fitted: np.ndarray
) -> None:
    """One chunk of a map's points: pattern ids (n,), coordinates (n, 2), whether each was in the fit (n,)."""
    points = [
        {"pattern_map_id": map_id, "head_pattern_id": int(pattern_ids[i]), "x": float(coordinates[i, 0]),
         "y": float(coordinates[i, 1]), "fitted": bool(fitted[i])}
        for i in range(len(pattern_ids))
    ]  # fmt: skip
    with store.session() as session:
        session.execute(insert(MapPoint), points)


def save_predictor(
    store: Store,
    predictor: Predictor,
    evaluation: PredictorEvaluation,
) -> int:
    """A trained predictor and its cross-validated evaluation, in one transaction; returns its id."""
    with store.session() as session:
        session.add(predictor)
        session.flush()
        evaluation.predictor_id = predictor.id
        session.add(evaluation)
        return int(predictor.id)


@dataclass(frozen=True)
class JobPredictor:
    """A predictor a job stored, with its evaluation (detached from the session)."""

    predictor_id: int
    task: str  # a training job's predictors each have one ("" for none)
    kind: str
    evaluation: PredictorEvaluation


def predictors_of_job(store: Store, job_id: int) -> list[JobPredictor]:
    """The predictors a job has stored so far (by any attempt of it), oldest first."""
    with store.session() as session:
        rows = session.execute(
            select(Predictor.id, Predictor.task, Predictor.kind, PredictorEvaluation)
            .join(PredictorEvaluation, PredictorEvaluation.predictor_id == Predictor.id)
            .where(Predictor.job_id == job_id)
            .order_by(Predictor.id)
        ).all()
        session.expunge_all()
    return [JobPredictor(int(i), task or "", kind, evaluation) for i, task, kind, evaluation in rows]
