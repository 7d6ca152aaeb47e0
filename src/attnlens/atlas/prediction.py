"""Correctness prediction for NEW patterns (pasted code), fast enough for a request.

    prediction, reason = predict_for_inference(settings, store, {"L0H0": vec, ...}, task="identifiers")

No UMAP runs here: each head's new embedding joins a cluster by a kNN vote among that head's already
clustered embeddings (`ClusterAssigner`), then the task's best stored predictor (by cross-validated
accuracy) gives P(correct) and per-head SHAP contributions. Assigners (one exact cosine index per head) and
deserialised predictors are built from the database once and cached per `Store`, keyed by clustering id
and predictor id, so a new clustering or predictor is picked up by the next call.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from attnlens.atlas.analysis_data import latest_clustering
from attnlens.config import Settings
from attnlens.heads import HeadRef
from attnlens.store import Store
from attnlens.store.models import (
    Cluster,
    ClusterAssignment,
    Clustering,
    HeadPattern,
    Predictor,
    PredictorEvaluation,
)
from attnlens.store.patterns import load_embeddings

# Labelled embeddings kept per head for the kNN vote (a seeded sample when a head has more). 1,000 x 128-d
# float32 x 270 heads is 138 MB; the vote of k=15 neighbours barely changes with a larger reference set.
MAX_LABELLED_PER_HEAD = 1000
TOP_HEADS = 10
PredictionResult = tuple[dict[str, Any] | None, str | None]


@dataclass
class _Cache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    assigners: dict[int, dict[HeadRef, Any]] = field(default_factory=dict)  # clustering id -> head -> assigner
    predictors: dict[int, Any] = field(default_factory=dict)  # predictor id -> CorrectnessPredictor


_CACHES: weakref.WeakKeyDictionary[Store, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache_of(store: Store) -> _Cache:
    with _CACHES_LOCK:
        cache = _CACHES.get(store)
        if cache is None:
            cache = _CACHES[store] = _Cache()
        return cache


def build_assigners(settings: Settings, store: Store, clustering_id: int) -> dict[HeadRef, Any]:
    """One `ClusterAssigner` per head of a clustering, from at most `MAX_LABELLED_PER_HEAD` of its
    labelled embeddings (noise points included: noise is a label a new pattern can get)."""
    from attnlens.analysis import ClusterAssigner

    rng = np.random.default_rng(settings.analysis.seed)
    assigners: dict[HeadRef, Any] = {}
    with store.session() as session:
        heads = session.execute(
            select(Cluster.layer, Cluster.head).where(Cluster.clustering_id == clustering_id).distinct()
        ).all()
        for layer, head in heads:
            rows = session.execute(
                select(HeadPattern.id, ClusterAssignment.label)
                .join(ClusterAssignment, ClusterAssignment.head_pattern_id == HeadPattern.id)
                .where(ClusterAssignment.clustering_id == clustering_id, HeadPattern.layer == layer, HeadPattern.head == head)
                .order_by(HeadPattern.id)
            ).all()
            ids = np.asarray([r[0] for r in rows], dtype=np.int64)
            labels = np.asarray([r[1] for r in rows], dtype=np.int64)
            if len(ids) > MAX_LABELLED_PER_HEAD:
                keep = np.sort(rng.choice(len(ids), size=MAX_LABELLED_PER_HEAD, replace=False))
                ids, labels = ids[keep], labels[keep]
            assigners[HeadRef(int(layer), int(head))] = ClusterAssigner(
                load_embeddings(session, ids), labels, settings.analysis.knn_k
            )
    return assigners


def assigners_for(settings: Settings, store: Store, clustering_id: int) -> dict[HeadRef, Any]:
    """Cached assigners of a clustering (built on first use; only the two newest clusterings are kept)."""
    cache = _cache_of(store)
    with cache.lock:
        if clustering_id not in cache.assigners:
            cache.assigners[clustering_id] = build_assigners(settings, store, clustering_id)
            for old in sorted(cache.assigners)[:-2]:
                del cache.assigners[old]
        return cache.assigners[clustering_id]


def _predictor(store: Store, predictor_id: int) -> Any:
    from attnlens.analysis import predictor_from_bytes

    cache = _cache_of(store)
    with cache.lock:
        if predictor_id not in cache.predictors:
            with store.session() as session:
                blob = session.scalar(select(Predictor.blob).where(Predictor.id == predictor_id))
            cache.predictors[predictor_id] = predictor_from_bytes(blob)
        return cache.predictors[predictor_id]


@dataclass(frozen=True)
class _Choice:
    predictor_id: int
    name: str
    kind: str
    task: str
    clustering_id: int | None
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    chance: float | None


def best_predictor(store: Store, model_name: str, task: str) -> _Choice | None:
    """The newest predictor of each kind for (model, task); of those, the one with the best CV accuracy."""
    with store.session() as session:
        rows = session.execute(
            select(Predictor.id, Predictor.name, Predictor.kind, Predictor.clustering_id, PredictorEvaluation)
            .join(PredictorEvaluation, PredictorEvaluation.predictor_id == Predictor.id)
            .where(Predictor.model_name == model_name, Predictor.task == task)
            .order_by(Predictor.id.desc())
        ).all()
    newest: dict[str, _Choice] = {}
    for predictor_id, name, kind, clustering_id, evaluation in rows:
        newest.setdefault(
            kind,
            _Choice(predictor_id, name, kind, task, clustering_id, evaluation.accuracy, evaluation.accuracy_low,
                    evaluation.accuracy_high, (evaluation.details or {}).get("chance")),
        )  # fmt: skip
    return max(newest.values(), key=lambda c: (c.accuracy, c.predictor_id), default=None)


def _vectors(embeddings_by_head: Mapping[Any, Any]) -> dict[HeadRef, np.ndarray]:
    out = {}
    for key, vector in embeddings_by_head.items():
        ref = key if isinstance(key, HeadRef) else HeadRef.parse(str(key))
        out[ref] = np.asarray(vector, dtype=np.float32).reshape(-1)  # (dim,)
    return out


def predict_for_inference(
    settings: Settings, store: Store, embeddings_by_head: Mapping[str | HeadRef, Any], task: str | None
) -> PredictionResult:
    """P(correct) of a new inference from its per-head AP-MAE embeddings ({"L3H5": (dim,) array}).

    Returns `(prediction, None)` with prediction = {probability_correct, predictor{name, kind, task,
    accuracy, accuracy_low, accuracy_high, chance}, top_heads[{name, importance}], clusters{name: label}},
    or `(None, reason)` when there is no finished clustering or no predictor for the task yet (the reason
    names the command to run). Importances are signed SHAP values in log-odds of "correct".
    """
    from attnlens.analysis import head_shap_values

    model_name = settings.model.name
    if task is None:
        return None, "no task for this completion point; predictors are trained per task."
    choice = best_predictor(store, model_name, task)
    if choice is None:
        return None, f"no correctness predictor for task {task!r} of {model_name}; run `attnlens predictors train`."
    clustering_id = choice.clustering_id
    if clustering_id is None or not _exists(store, clustering_id):
        latest = latest_clustering(store, model_name)
        if latest is None:
            return None, f"{model_name} has no clustering yet; run `attnlens atlas cluster`."
        clustering_id = latest.id
    vectors = _vectors(embeddings_by_head)
    assigners = assigners_for(settings, store, clustering_id)
    clusters = {
        ref.name: int(assigners[ref].assign(vectors[ref]).labels[0]) for ref in sorted(vectors) if ref in assigners
    }
    predictor = _predictor(store, choice.predictor_id)
    missing = [ref.name for ref in predictor.heads if ref not in vectors]
    if missing:
        return None, f"the inference lacks heads the predictor needs ({', '.join(missing[:5])}); embed every head."
    if predictor.kind == "clusters_catboost":
        features = np.asarray([[clusters.get(ref.name, -1) for ref in predictor.heads]], dtype=np.int64)  # (1, head)
    else:
        features = np.stack([vectors[ref] for ref in predictor.heads])[None]  # (1, head, dim)
    probability = float(predictor.predict_proba(features)[0])
    shap = head_shap_values(predictor, features).values[0]  # (head,)
    order = np.argsort(-np.abs(shap))[:TOP_HEADS]
    return {
        "probability_correct": probability,
        "predictor": {
            "name": choice.name,
            "kind": choice.kind,
            "task": choice.task,
            "accuracy": choice.accuracy,
            "accuracy_low": choice.accuracy_low,
            "accuracy_high": choice.accuracy_high,
            "chance": choice.chance,
        },
        "top_heads": [{"name": predictor.heads[i].name, "importance": float(shap[i])} for i in order],
        "clusters": clusters,
    }, None


def _exists(store: Store, clustering_id: int) -> bool:
    with store.session() as session:
        return session.get(Clustering, clustering_id) is not None
