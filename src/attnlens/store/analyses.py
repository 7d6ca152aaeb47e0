"""Queries about finished analyses: the newest clustering, map and predictors of a model, a head's
clusters, and which cluster a stored pattern is in. One function per question; the API, the CLI and the
use cases all ask here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from attnlens.heads import HeadRef
from attnlens.store.engine import Store
from attnlens.store.models import (
    MINED,
    Cluster,
    ClusterAssignment,
    Clustering,
    HeadPattern,
    Inference,
    Job,
    MapPoint,
    PatternMap,
    Predictor,
    PredictorEvaluation,
    Scenario,
)

# Knuth's multiplicative hash: (id * 2654435761) mod 2^32 spreads consecutive ids evenly over [0, 2^32), so
# "hash < fraction * 2^32" keeps a fixed, well-mixed share of the points (the same ones on every call)
# without a random draw or reading every row. Consecutive ids are the heads of one inference, so a
# stride would keep the same few heads; the hash does not.
_HASH_MULTIPLIER = 2_654_435_761
_HASH_RANGE = 2**32


# How far back the "latest finished" lookups look; older unfinished runs beyond this are ignored.
_RECENT = 50
_LOOKUP_CHUNK = 500


def latest_clustering(store: Store, model_name: str) -> Clustering | None:
    """The newest finished clustering of a model (a cancelled or crashed run is not finished)."""
    with store.session() as session:
        for row in session.scalars(
            select(Clustering)
            .where(Clustering.model_name == model_name)
            .order_by(Clustering.id.desc())
            .limit(_RECENT)
        ):
            if (row.parameters or {}).get("complete"):
                return row
    return None


def clustering_exists(store: Store, clustering_id: int) -> bool:
    with store.session() as session:
        return session.get(Clustering, clustering_id) is not None


def latest_map(store: Store, model_name: str) -> PatternMap | None:
    """The newest finished 2-D map of a model."""
    with store.session() as session:
        for row in session.scalars(select(PatternMap).order_by(PatternMap.id.desc()).limit(_RECENT)):
            parameters = row.parameters or {}
            if parameters.get("complete") and parameters.get("model") == model_name:
                return row
    return None


@dataclass(frozen=True)
class PredictorRow:
    """A stored predictor with its cross-validated evaluation (detached from the session)."""

    predictor: Predictor
    evaluation: PredictorEvaluation


def newest_predictors(store: Store, model_name: str, task: str | None = None) -> list[PredictorRow]:
    """The newest evaluated predictor of each (task, kind) of a model, sorted by task and kind; with `task`,
    of that task only. A predictor without an evaluation (a training that died between the two writes)
    is not a result and is skipped."""
    query = (
        select(Predictor, PredictorEvaluation)
        .join(PredictorEvaluation, PredictorEvaluation.predictor_id == Predictor.id)
        .where(Predictor.model_name == model_name)
        .order_by(Predictor.id.desc(), PredictorEvaluation.id.desc())
    )
    if task is not None:
        query = query.where(Predictor.task == task)
    newest: dict[tuple[str, str], PredictorRow] = {}
    with store.session() as session:
        for predictor, evaluation in session.execute(query).all():
            newest.setdefault((predictor.task or "", predictor.kind), PredictorRow(predictor, evaluation))
    return [newest[key] for key in sorted(newest)]


@dataclass(frozen=True)
class HeadImportance:
    """One head's SHAP importance in a predictor's final model."""

    name: str
    mean_abs_shap: float
    mean_shap: float


@dataclass(frozen=True)
class TaskHeadRanking:
    """The heads one task's most accurate head-ranking predictor leans on, most important first."""

    task: str | None
    row: PredictorRow
    heads: list[HeadImportance]

    @property
    def chance(self) -> float | None:
        value = (self.row.evaluation.details or {}).get("chance")
        return None if value is None else float(value)

    @property
    def above_chance(self) -> bool:
        """The accuracy's 95% interval lies above chance; else the ranking is no evidence about the task."""
        return self.chance is not None and self.row.evaluation.accuracy_low > self.chance


def important_heads(store: Store, model_name: str, top: int) -> list[TaskHeadRanking]:
    """Per task (in name order), the `top` heads by mean |SHAP| in the task's most accurate predictor that
    ranks heads; tasks whose predictors rank none are left out. The overview and the snapshot show these."""
    best: dict[str | None, PredictorRow] = {}
    for row in newest_predictors(store, model_name):
        if not (row.evaluation.details or {}).get("head_importance"):
            continue
        known = best.get(row.predictor.task)
        if known is None or row.evaluation.accuracy > known.evaluation.accuracy:
            best[row.predictor.task] = row
    rankings = []
    for task, row in sorted(best.items(), key=lambda item: item[0] or ""):
        entries = sorted((row.evaluation.details or {})["head_importance"], key=lambda e: -e["mean_abs_shap"])
        heads = [
            HeadImportance(str(e["name"]), float(e["mean_abs_shap"]), float(e["mean_shap"])) for e in entries
        ]
        rankings.append(TaskHeadRanking(task=task, row=row, heads=heads[:top]))
    return rankings


def predictor_blob(store: Store, predictor_id: int) -> bytes | None:
    with store.session() as session:
        return session.scalar(select(Predictor.blob).where(Predictor.id == predictor_id))


def newest_head_importance(
    store: Store, model_name: str, task: str, kind: str
) -> list[dict[str, Any]] | None:
    """The per-head SHAP summary stored with the newest evaluation of a (model, task, kind) predictor."""
    with store.session() as session:
        details = session.scalar(
            select(PredictorEvaluation.details)
            .join(Predictor, Predictor.id == PredictorEvaluation.predictor_id)
            .where(Predictor.model_name == model_name, Predictor.task == task, Predictor.kind == kind)
            .order_by(PredictorEvaluation.id.desc())
            .limit(1)
        )
    if not details or "head_importance" not in details:
        return None
    return list(details["head_importance"])


def clustering_shape(session: Session, clustering_id: int) -> tuple[int, int]:
    """(layers, heads) covered by a clustering: one more than the largest indices it has clusters for."""
    n_layers, n_heads = session.execute(
        select(func.max(Cluster.layer), func.max(Cluster.head)).where(Cluster.clustering_id == clustering_id)
    ).one()
    return (n_layers or 0) + 1, (n_heads or 0) + 1


def head_clusters(session: Session, clustering_id: int, ref: HeadRef) -> list[Cluster]:
    """A head's clusters in a clustering: real clusters by label, noise last."""
    rows = session.scalars(
        select(Cluster).where(
            Cluster.clustering_id == clustering_id, Cluster.layer == ref.layer, Cluster.head == ref.head
        )
    ).all()
    return sorted(rows, key=lambda c: (c.label < 0, c.label))


def clustered_heads(session: Session, clustering_id: int) -> list[HeadRef]:
    """Every head with clusters in a clustering, in (layer, head) order."""
    rows = session.execute(
        select(Cluster.layer, Cluster.head)
        .where(Cluster.clustering_id == clustering_id)
        .distinct()
        .order_by(Cluster.layer, Cluster.head)
    ).all()
    return [HeadRef(int(layer), int(head)) for layer, head in rows]


def cluster_labels(session: Session, clustering_id: int, pattern_ids: Sequence[int]) -> dict[int, int]:
    """Pattern id -> cluster label (-1: noise) in a clustering, for the ids it assigned."""
    out: dict[int, int] = {}
    ids = list(pattern_ids)
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        out.update(
            (int(pattern_id), int(label))
            for pattern_id, label in session.execute(
                select(ClusterAssignment.head_pattern_id, ClusterAssignment.label).where(
                    ClusterAssignment.clustering_id == clustering_id,
                    ClusterAssignment.head_pattern_id.in_(chunk),
                )
            ).all()
        )
    return out


def map_size(session: Session, map_id: int) -> int:
    return int(session.scalar(select(func.count()).where(MapPoint.pattern_map_id == map_id)) or 0)


def map_points(
    session: Session, map_id: int, clustering_id: int | None, *, total: int, max_points: int
) -> Sequence[Any]:
    """A map's points as (x, y, pattern id, layer, head, task, first-token correct, cluster label) in
    pattern-id order; when the map has more than `max_points`, a fixed well-mixed sample of them."""
    query = (
        select(MapPoint.x, MapPoint.y, MapPoint.head_pattern_id, HeadPattern.layer, HeadPattern.head,
               Scenario.task, Inference.first_token_correct, ClusterAssignment.label)
        .join(HeadPattern, HeadPattern.id == MapPoint.head_pattern_id)
        .join(Inference, Inference.id == HeadPattern.inference_id)
        .outerjoin(Scenario, Scenario.id == Inference.scenario_id)
        .outerjoin(
            ClusterAssignment,
            (ClusterAssignment.head_pattern_id == MapPoint.head_pattern_id)
            & (ClusterAssignment.clustering_id == (clustering_id if clustering_id is not None else -1)),
        )
        .where(MapPoint.pattern_map_id == map_id)
        .order_by(MapPoint.head_pattern_id)
    )  # fmt: skip
    if total > max_points:
        threshold = int(_HASH_RANGE * max_points / total)
        query = query.where((MapPoint.head_pattern_id * _HASH_MULTIPLIER) % _HASH_RANGE < threshold).limit(
            max_points
        )
    return session.execute(query).all()


def head_assignments(session: Session, clustering_id: int, ref: HeadRef) -> tuple[np.ndarray, np.ndarray]:
    """One head's (pattern ids (n,) int64, labels (n,) int64) in a clustering, in pattern-id order."""
    rows = session.execute(
        select(HeadPattern.id, ClusterAssignment.label)
        .join(ClusterAssignment, ClusterAssignment.head_pattern_id == HeadPattern.id)
        .where(
            ClusterAssignment.clustering_id == clustering_id,
            HeadPattern.layer == ref.layer,
            HeadPattern.head == ref.head,
        )
        .order_by(HeadPattern.id)
    ).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    labels = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    return ids, labels


def predictor_with_evaluation(store: Store, predictor_id: int) -> PredictorRow | None:
    """One stored predictor with its newest evaluation; None when there is no such predictor or it has no
    evaluation (a training that died between the two writes)."""
    with store.session() as session:
        row = session.execute(
            select(Predictor, PredictorEvaluation)
            .join(PredictorEvaluation, PredictorEvaluation.predictor_id == Predictor.id)
            .where(Predictor.id == predictor_id)
            .order_by(PredictorEvaluation.id.desc())
            .limit(1)
        ).first()
    return None if row is None else PredictorRow(row[0], row[1])


def clustering_by_id(store: Store, clustering_id: int) -> Clustering | None:
    """One clustering (finished or not), detached; None when there is no such clustering."""
    with store.session() as session:
        return session.get(Clustering, clustering_id)


def clustering_clusters(session: Session, clustering_id: int) -> list[Cluster]:
    """Every cluster (noise included: label -1) of every head in a clustering, by (layer, head, label)."""
    return list(
        session.scalars(
            select(Cluster)
            .where(Cluster.clustering_id == clustering_id)
            .order_by(Cluster.layer, Cluster.head, Cluster.label)
        ).all()
    )


def succeeded_jobs(store: Store, kind: str, limit: int = 50) -> list[Job]:
    """The newest succeeded jobs of `kind` (detached), newest first."""
    with store.session() as session:
        jobs = list(
            session.scalars(
                select(Job)
                .where(Job.kind == kind, Job.state == "succeeded")
                .order_by(Job.id.desc())
                .limit(limit)
            ).all()
        )
        for job in jobs:
            session.expunge(job)
    return jobs


def jobs_of_kind(store: Store, kind: str, limit: int = 50) -> list[Job]:
    """The newest jobs of `kind` in any state (detached), newest first: what a page needs to say whether a
    result exists, is being made, or last failed."""
    with store.session() as session:
        jobs = list(session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id.desc()).limit(limit)))
        for job in jobs:
            session.expunge(job)
    return jobs


def jobs_about_inference(store: Store, kind: str, inference_id: int, limit: int = 20) -> list[Job]:
    """The newest jobs of `kind` whose parameters name `inference_id` (detached), newest first."""
    with store.session() as session:
        jobs = list(
            session.scalars(
                select(Job)
                .where(Job.kind == kind, Job.parameters["inference_id"].as_integer() == inference_id)
                .order_by(Job.id.desc())
                .limit(limit)
            )
        )
        for job in jobs:
            session.expunge(job)
    return jobs


def has_mined_inferences(store: Store, model_name: str) -> bool:
    with store.session() as session:
        query = select(Inference.id).where(Inference.model_name == model_name, Inference.source == MINED)
        return session.scalar(query.limit(1)) is not None


def has_predictors(store: Store, model_name: str) -> bool:
    with store.session() as session:
        return (
            session.scalar(select(Predictor.id).where(Predictor.model_name == model_name).limit(1))
            is not None
        )


def queued_job_ids(store: Store) -> list[int]:
    """Every queued job's id, oldest first: the order the worker takes them in."""
    with store.session() as session:
        return [int(i) for i in session.scalars(select(Job.id).where(Job.state == "queued").order_by(Job.id))]
