"""Correctness prediction for NEW patterns (pasted code), fast enough for a request.

No UMAP runs here: each head's new embedding joins a cluster by a kNN vote among that head's already
clustered embeddings (`ClusterAssigner`), then the task's best stored predictor (by cross-validated
accuracy) gives P(correct) and per-head SHAP contributions. Assigners (one exact cosine index per head) and
deserialised predictors are built from the database once and cached per `Store`, keyed by clustering id
and predictor id, so a new clustering or predictor is picked up by the next call.

Whether a predictor's measured (cross-validated) accuracy applies to a new input is decided by
`attnlens.atlas.applicability`, and every `Prediction` says so (`applies`, `applicability`). Among a task's
predictors, one whose accuracy applies is preferred to a more accurate one whose does not.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from attnlens.atlas.applicability import Applicability, applicability
from attnlens.config import Settings
from attnlens.contracts.jobs import ATLAS_CLUSTER, TRAIN_PREDICTORS
from attnlens.contracts.results import HeadContribution, Prediction, PredictorInfo
from attnlens.heads import HeadRef
from attnlens.store import Store
from attnlens.store.analyses import (
    clustered_heads,
    clustering_by_id,
    clustering_exists,
    head_assignments,
    latest_clustering,
    newest_predictors,
    predictor_blob,
)
from attnlens.store.jobs import list_jobs
from attnlens.store.patterns import load_embeddings

if TYPE_CHECKING:
    from attnlens.analysis import ClusterAssigner, Predictor

# Labelled embeddings kept per head for the kNN vote (a seeded sample when a head has more). 1,000 x 128-d
# float32 x 270 heads is 138 MB; the vote of k=15 neighbours barely changes with a larger reference set.
MAX_LABELLED_PER_HEAD = 1000
TOP_HEADS = 10


@dataclass
class _Cache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    assigners: dict[int, dict[HeadRef, ClusterAssigner]] = field(default_factory=dict)  # by clustering id
    predictors: dict[int, Predictor] = field(default_factory=dict)  # by predictor id


_CACHES: weakref.WeakKeyDictionary[Store, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache_of(store: Store) -> _Cache:
    with _CACHES_LOCK:
        cache = _CACHES.get(store)
        if cache is None:
            cache = _CACHES[store] = _Cache()
        return cache


def build_assigners(settings: Settings, store: Store, clustering_id: int) -> dict[HeadRef, ClusterAssigner]:
    """One `ClusterAssigner` per head of a clustering, from at most `MAX_LABELLED_PER_HEAD` of its
    labelled embeddings (noise points included: noise is a label a new pattern can get)."""
    from attnlens.analysis import ClusterAssigner

    rng = np.random.default_rng(settings.analysis.seed)
    assigners: dict[HeadRef, ClusterAssigner] = {}
    with store.session() as session:
        for ref in clustered_heads(session, clustering_id):
            ids, labels = head_assignments(session, clustering_id, ref)
            if len(ids) > MAX_LABELLED_PER_HEAD:
                keep = np.sort(rng.choice(len(ids), size=MAX_LABELLED_PER_HEAD, replace=False))
                ids, labels = ids[keep], labels[keep]
            assigners[ref] = ClusterAssigner(load_embeddings(session, ids), labels, settings.analysis.knn_k)
    return assigners


def assigners_for(settings: Settings, store: Store, clustering_id: int) -> dict[HeadRef, ClusterAssigner]:
    """Cached assigners of a clustering (built on first use; only the two newest clusterings are kept)."""
    cache = _cache_of(store)
    with cache.lock:
        if clustering_id not in cache.assigners:
            cache.assigners[clustering_id] = build_assigners(settings, store, clustering_id)
            for old in sorted(cache.assigners)[:-2]:
                del cache.assigners[old]
        return cache.assigners[clustering_id]


def _predictor(store: Store, predictor_id: int) -> Predictor:
    from attnlens.analysis import predictor_from_bytes

    cache = _cache_of(store)
    with cache.lock:
        if predictor_id not in cache.predictors:
            blob = predictor_blob(store, predictor_id)
            if blob is None:
                raise LookupError(f"predictor {predictor_id} was deleted")
            cache.predictors[predictor_id] = predictor_from_bytes(blob)
        return cache.predictors[predictor_id]


@dataclass(frozen=True)
class _Choice:
    predictor_id: int
    clustering_id: int | None
    info: PredictorInfo
    model_name: str
    window_tokens: int | None  # the median prompt length of its training rows; None: not recorded


def _choices(store: Store, model_name: str, task: str, kind: str | None = None) -> list[_Choice]:
    """The newest predictor of each kind for (model, task) (or only of `kind`)."""
    return [
        _Choice(
            row.predictor.id,
            row.predictor.clustering_id,
            PredictorInfo(
                id=row.predictor.id,
                name=row.predictor.name,
                kind=row.predictor.kind,
                task=task,
                accuracy=row.evaluation.accuracy,
                accuracy_low=row.evaluation.accuracy_low,
                accuracy_high=row.evaluation.accuracy_high,
                chance=(row.evaluation.details or {}).get("chance"),
            ),
            row.predictor.model_name,
            (row.predictor.parameters or {}).get("window_tokens"),
        )
        for row in newest_predictors(store, model_name, task)
        if kind is None or row.predictor.kind == kind
    ]


def best_predictor(store: Store, model_name: str, task: str, *, kind: str | None = None) -> _Choice | None:
    """The newest predictor of each kind for (model, task); of those, the one with the best CV accuracy
    (or the one of `kind`)."""
    choices = _choices(store, model_name, task, kind)
    return max(choices, key=lambda c: (c.info.accuracy, c.predictor_id), default=None)


def _applicability_of(
    settings: Settings,
    store: Store,
    choice: _Choice,
    model_name: str,
    prompt_tokens: int | None,
    embedder: str | None,
) -> Applicability:
    """`applicability` of a stored predictor for an input of `prompt_tokens` embedded by `embedder`."""
    from attnlens.analysis import predictor_kind

    clustering = None if choice.clustering_id is None else clustering_by_id(store, choice.clustering_id)
    return applicability(
        prompt_tokens=prompt_tokens,
        window_tokens=choice.window_tokens or settings.mining.context_tokens,
        model_name=model_name,
        predictor_model=choice.model_name,
        embedder=embedder,
        predictor_embedder=None if clustering is None else clustering.embedder,
        cluster_ids=predictor_kind(choice.info.kind).spec.features == "cluster_ids",
        knn_agreement=None if clustering is None else (clustering.parameters or {}).get("knn_agreement"),
    )


def as_vectors(embeddings_by_head: Mapping[str | HeadRef, Any]) -> dict[HeadRef, np.ndarray]:
    """{head: (dim,) float32} from embeddings keyed by `HeadRef` or `L{layer}H{head}`."""
    out = {}
    for key, vector in embeddings_by_head.items():
        ref = key if isinstance(key, HeadRef) else HeadRef.parse(str(key))
        out[ref] = np.asarray(vector, dtype=np.float32).reshape(-1)  # (dim,)
    return out


@dataclass(frozen=True)
class Placement:
    """Where a new inference's heads fall in a clustering (kNN vote); empty when there is none."""

    clustering_id: int | None
    clusters: dict[str, int]  # head name -> label (-1: noise)


def place_in_clusters(
    settings: Settings,
    store: Store,
    model_name: str,
    vectors: Mapping[HeadRef, np.ndarray],
    clustering_id: int | None,
) -> Placement:
    """Each head's cluster by kNN vote in `clustering_id` (or the model's newest finished clustering)."""
    if clustering_id is None or not clustering_exists(store, clustering_id):
        latest = latest_clustering(store, model_name)
        if latest is None:
            return Placement(None, {})
        clustering_id = latest.id
    assigners = assigners_for(settings, store, clustering_id)
    clusters = {
        ref.name: int(assigners[ref].assign(vectors[ref]).labels[0])
        for ref in sorted(vectors)
        if ref in assigners
    }
    return Placement(clustering_id, clusters)


def predict_for_inference(
    settings: Settings,
    store: Store,
    model_name: str,
    vectors: Mapping[HeadRef, np.ndarray],
    task: str | None,
    *,
    prompt_tokens: int | None = None,
    embedder: str | None = None,
) -> tuple[Prediction | None, str | None, Placement]:
    """P(correct) of a new inference from its per-head AP-MAE embeddings, and where its heads fall.

    `prompt_tokens` is the inference's prompt length and `embedder` the checkpoint that embedded it
    (`runtime.embedder_name`); the prediction says whether its predictor's measured accuracy applies to
    them (None: not known, so it does not). The task's predictor is the most accurate one whose accuracy
    applies, else the most accurate one.

    Returns `(prediction, None, placement)`, or `(None, reason, placement)` when there is no predictor for
    the task or no clustering yet (the reason names the command to run). Importances are signed SHAP
    values in log-odds of "correct"."""
    from attnlens.analysis import head_shap_values, predictor_kind

    judged = [
        (c, _applicability_of(settings, store, c, model_name, prompt_tokens, embedder))
        for c in ([] if task is None else _choices(store, model_name, task))
    ]
    choice, applies = max(
        judged, key=lambda cj: (cj[1].applies, cj[0].info.accuracy, cj[0].predictor_id), default=(None, None)
    )
    placement = place_in_clusters(
        settings, store, model_name, vectors, choice.clustering_id if choice else None
    )
    if task is None:
        return None, "no task for this completion point; predictors are trained per task.", placement
    if choice is None or applies is None:
        lack = f"no correctness predictor for task {task!r} of {model_name} yet"
        return None, _what_is_coming(store, lack, TRAIN_PREDICTORS, "attnlens predictors train"), placement
    if placement.clustering_id is None:
        lack = f"{model_name} has no clustering yet"
        return None, _what_is_coming(store, lack, ATLAS_CLUSTER, "attnlens atlas cluster"), placement
    predictor = _predictor(store, choice.predictor_id)
    missing = [ref.name for ref in predictor.heads if ref not in vectors]
    if missing:
        return None, f"the inference lacks heads the predictor needs ({', '.join(missing[:5])}).", placement
    if predictor_kind(predictor.kind).spec.features == "cluster_ids":
        labels = [placement.clusters.get(ref.name, -1) for ref in predictor.heads]
        features = np.asarray([labels], dtype=np.int64)  # (1, head)
    else:
        features = np.stack([vectors[ref] for ref in predictor.heads])[None]  # (1, head, dim)
    probability = float(predictor.predict_proba(features)[0])
    shap = head_shap_values(predictor, features).values[0]  # (head,)
    order = np.argsort(-np.abs(shap))[:TOP_HEADS]
    top = [
        HeadContribution(
            name=predictor.heads[i].name,
            importance=float(shap[i]),
            cluster=placement.clusters.get(predictor.heads[i].name),
        )
        for i in order
    ]
    prediction = Prediction(
        probability_correct=probability,
        predictor=choice.info,
        top_heads=top,
        applies=applies.applies,
        applicability=applies.reason,
        prompt_tokens=0 if prompt_tokens is None else prompt_tokens,
    )
    return prediction, None, placement


@dataclass(frozen=True)
class RowsExplained:
    """Per-head SHAP of one stored predictor over given rows (the rows an experiment acts on)."""

    predictor_id: int
    info: PredictorInfo
    heads: tuple[HeadRef, ...]
    values: np.ndarray  # (rows, head) SHAP in log-odds of "correct"


def explain_rows(
    settings: Settings,
    store: Store,
    model_name: str,
    task: str,
    rows: Sequence[Mapping[HeadRef, np.ndarray]],
    kind: str | None = None,
) -> RowsExplained | None:
    """SHAP values of the task's predictor (`kind`, or the best by CV accuracy) over new rows, each row a
    {head: (dim,) embedding}; cluster-id kinds get each head's cluster by kNN vote in the clustering the
    predictor was trained on. None when the task has no predictor (of that kind)."""
    from attnlens.analysis import head_shap_values, predictor_kind

    choice = best_predictor(store, model_name, task, kind=kind)
    if choice is None or not rows:
        return None
    predictor = _predictor(store, choice.predictor_id)
    if predictor_kind(predictor.kind).spec.features == "cluster_ids":
        labels = []
        for vectors in rows:
            placed = place_in_clusters(settings, store, model_name, vectors, choice.clustering_id)
            labels.append([placed.clusters.get(ref.name, -1) for ref in predictor.heads])
        features = np.asarray(labels, dtype=np.int64)  # (rows, head)
    else:
        features = np.stack(
            [np.stack([r[ref] for ref in predictor.heads]) for r in rows]
        )  # (rows, head, dim)
    shap = head_shap_values(predictor, features)
    return RowsExplained(choice.predictor_id, choice.info, tuple(predictor.heads), shap.values)


def _what_is_coming(store: Store, missing: str, kind: str, command: str) -> str:
    """What is missing, and either the job already queued or running that will make it (not yet is not an
    error) or the command that would."""
    pending = list_jobs(store, states=["running", "queued"], limit=200)
    job = next((j for j in reversed(pending) if j.kind == kind), None)
    if job is None:
        return f"{missing}; run `{command}`."
    ahead = [j for j in pending if j.id < job.id and j.state in ("running", "queued")]
    if job.state == "running":
        done = f"{job.progress_done} of {job.progress_total or '?'}"
        return f"{missing}: job {job.id} ({kind}) is running now ({done})."
    queue = f", after {len(ahead)} job(s) ahead of it" if ahead else ""
    return f"{missing}: job {job.id} ({kind}) is queued{queue}; this fills in once it has run."
