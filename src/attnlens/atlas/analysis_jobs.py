"""Analysis jobs for the worker's job runner: `atlas_cluster`, `atlas_map` and `train_predictors`.

Each turns pure functions of `attnlens.analysis` into rows of the database:
- `atlas_cluster`: per-head UMAP + HDBSCAN over one model's stored patterns, one head in memory at a time;
  a `Clustering` with its `Cluster` summaries and a `ClusterAssignment` per pattern. Each head is written
  in one transaction, so a requeued job resumes after the last finished head.
- `atlas_map`: the global 2-D UMAP map as a `PatternMap` with a `MapPoint` per pattern.
- `train_predictors`: per task (and the `noise` control), both predictor kinds cross-validated
  (`PredictorEvaluation`) and refitted on every row (`Predictor.blob`).
A run counts as finished when its `parameters["complete"]` is true; readers use only finished runs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sqlalchemy import insert, select

from attnlens.atlas.analysis_data import (
    NOISE_TASK,
    Selection,
    choose_selection,
    latest_clustering,
    load_head_rows,
    load_task_rows,
    selected_heads,
    task_names,
)
from attnlens.atlas.analysis_evaluation import evaluate_and_store
from attnlens.errors import InsufficientData
from attnlens.service.jobs import JobContext
from attnlens.store.models import Cluster, ClusterAssignment, Clustering, MapPoint, PatternMap

ATLAS_CLUSTER = "atlas_cluster"
ATLAS_MAP = "atlas_map"
TRAIN_PREDICTORS = "train_predictors"
CLUSTERING_FIELDS = (
    "seed", "umap_components", "umap_neighbors", "umap_min_dist", "umap_metric", "hdbscan_min_samples",
    "hdbscan_min_cluster_size", "hdbscan_allow_single_cluster", "dedup_jitter",
)  # fmt: skip
MAP_FIELDS = ("seed", "map_fit_sample", "map_neighbors", "map_min_dist", "umap_metric", "dedup_jitter")
_WRITE_CHUNK = 20_000
log = logging.getLogger(__name__)


def _model_of(ctx: JobContext) -> str:
    model = ctx.job.parameters.get("model") or ctx.settings.model.name
    return str(model)


def _complete(store: Any, table: type, row_id: int, **extra: Any) -> None:
    with store.session() as session:
        row = session.get(table, row_id)
        # A new dict, so SQLAlchemy sees the JSON column change.
        row.parameters = {**(row.parameters or {}), **extra, "complete": True}


# -- atlas_cluster ------------------------------------------------------------------------------------------


def _clustering_for_job(ctx: JobContext, selection: Selection) -> int:
    """This job's clustering row: the one a previous attempt of the job started, or a new one."""
    with ctx.store.session() as session:
        existing = session.scalar(select(Clustering.id).where(Clustering.job_id == ctx.job.id).order_by(Clustering.id.desc()))
        if existing is not None:
            return int(existing)
        parameters = {name: getattr(ctx.settings.analysis, name) for name in CLUSTERING_FIELDS}
        row = Clustering(model_name=selection.model_name, embedder=selection.embedder, parameters=parameters, job_id=ctx.job.id)
        session.add(row)
        session.flush()
        return row.id


def _store_head(session: Any, clustering_id: int, head: Any, rows: Any, result: Any) -> None:
    for summary in result.clusters:
        session.add(
            Cluster(
                clustering_id=clustering_id,
                layer=head.layer,
                head=head.head,
                label=summary.label,
                size=summary.size,
                medoid_head_pattern_id=None if summary.medoid is None else int(rows.pattern_ids[summary.medoid]),
                attributes=summary.attributes,
            )
        )
    assignments = [
        {"clustering_id": clustering_id, "head_pattern_id": int(pid), "label": int(label), "vote_share": None}
        for pid, label in zip(rows.pattern_ids, result.labels, strict=True)
    ]
    for start in range(0, len(assignments), _WRITE_CHUNK):
        session.execute(insert(ClusterAssignment), assignments[start : start + _WRITE_CHUNK])


def run_atlas_cluster(ctx: JobContext) -> dict[str, Any]:
    """Cluster every head of one model's stored patterns; progress is counted in heads."""
    from attnlens.analysis import cluster_head

    settings = ctx.settings.analysis
    with ctx.store.session() as session:
        selection = choose_selection(session, _model_of(ctx))
        heads = selected_heads(session, selection)
    clustering_id = _clustering_for_job(ctx, selection)
    with ctx.store.session() as session:
        done = {(int(a), int(b)) for a, b in session.execute(
            select(Cluster.layer, Cluster.head).where(Cluster.clustering_id == clustering_id).distinct()
        )}  # fmt: skip
    skipped: dict[str, str] = {}
    n_clusters = n_patterns = n_noise = 0
    for i, head in enumerate(heads):
        if ctx.should_stop():
            return {"clustering_id": clustering_id, "heads_done": i, "heads": len(heads), "complete": False}
        ctx.progress(i, len(heads), f"clustering {head.name}")
        if (head.layer, head.head) in done:
            continue
        with ctx.store.session() as session:
            rows = load_head_rows(session, selection, head)
        attributes = {"task": rows.tasks, "node_type": rows.node_types, "correct": rows.correct}
        result = cluster_head(rows.embeddings, settings, attributes=attributes, head=head)
        if result.reason:
            skipped[head.name] = result.reason
        n_clusters += result.n_clusters
        n_patterns += len(result.labels)
        n_noise += int(np.sum(result.labels < 0))
        with ctx.store.session() as session:
            _store_head(session, clustering_id, head, rows, result)
    _complete(ctx.store, Clustering, clustering_id, **selection.to_dict())
    ctx.progress(len(heads), len(heads), "clustering finished")
    return {
        "clustering_id": clustering_id,
        **selection.to_dict(),
        "heads": len(heads),
        "clusters": n_clusters,
        "patterns_this_run": n_patterns,
        "noise_fraction_this_run": round(n_noise / n_patterns, 4) if n_patterns else None,
        "heads_all_noise": skipped,
    }


# -- atlas_map ----------------------------------------------------------------------------------------------


def run_atlas_map(ctx: JobContext) -> dict[str, Any]:
    """Fit the 2-D map on a seeded sample of one model's patterns, place the rest, store every point."""
    from attnlens.analysis import build_cluster_map
    from attnlens.atlas.analysis_data import iter_selection_embeddings

    settings = ctx.settings.analysis
    with ctx.store.session() as session:
        selection = choose_selection(session, _model_of(ctx))
        batches = list(iter_selection_embeddings(session, selection))
    ids = np.concatenate([b[0] for b in batches])
    embeddings = np.concatenate([b[1] for b in batches])  # (n, dim) float32
    del batches
    n = len(ids)
    # Steps: the UMAP work (fit + transforms, n points) then writing the points (n more).
    ctx.progress(0, 2 * n, f"fitting UMAP on {min(n, settings.map_fit_sample):,} of {n:,} patterns")

    def on_progress(done: int, total: int) -> None:
        ctx.progress(done, 2 * total, f"placed {done:,} of {total:,} patterns")

    result = build_cluster_map(embeddings, settings, on_progress=on_progress)
    if ctx.should_stop():
        return {"complete": False, "patterns": n}
    fitted = np.zeros(n, dtype=bool)
    fitted[result.fit_rows] = True
    parameters = {name: getattr(settings, name) for name in MAP_FIELDS}
    with ctx.store.session() as session:
        row = PatternMap(name=selection.model_name, parameters={**parameters, **selection.to_dict()}, job_id=ctx.job.id)
        session.add(row)
        session.flush()
        map_id = row.id
    for start in range(0, n, _WRITE_CHUNK):
        stop = min(n, start + _WRITE_CHUNK)
        points = [
            {"pattern_map_id": map_id, "head_pattern_id": int(ids[i]), "x": float(result.coordinates[i, 0]),
             "y": float(result.coordinates[i, 1]), "fitted": bool(fitted[i])}
            for i in range(start, stop)
        ]  # fmt: skip
        with ctx.store.session() as session:
            session.execute(insert(MapPoint), points)
        ctx.progress(n + stop, 2 * n, f"stored {stop:,} of {n:,} points")
    _complete(ctx.store, PatternMap, map_id, points=n)
    return {"map_id": map_id, **selection.to_dict(), "points": n, "fitted_on": int(fitted.sum())}


# -- train_predictors ---------------------------------------------------------------------------------------


def predictor_parameters(tasks: list[str] | None, model: str | None) -> dict[str, Any]:
    """Job parameters of a predictor training (tasks None: every task in the atlas plus `noise`)."""
    return {"tasks": tasks, "model": model}


def run_train_predictors(ctx: JobContext) -> dict[str, Any]:
    """Per task: both predictor kinds, cross-validated and refitted, on the latest finished clustering."""
    from attnlens.analysis import PREDICTOR_KINDS

    model_name = _model_of(ctx)
    clustering = latest_clustering(ctx.store, model_name)
    if clustering is None:
        raise InsufficientData(
            f"model {model_name!r} has no finished clustering; run `attnlens atlas cluster` first."
        )
    selection = Selection(model_name, clustering.embedder)
    with ctx.store.session() as session:
        heads = selected_heads(session, selection)
        available = task_names(session, selection)
    requested = ctx.job.parameters.get("tasks") or available
    tasks = list(dict.fromkeys(list(requested) + ([NOISE_TASK] if not ctx.job.parameters.get("tasks") else [])))
    total = len(tasks) * len(PREDICTOR_KINDS)
    trained: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for t, task in enumerate(tasks):
        if ctx.should_stop():
            break
        ctx.progress(t * len(PREDICTOR_KINDS), total, f"loading {task}")
        with ctx.store.session() as session:
            rows = load_task_rows(session, selection, task, clustering.id, heads)
        if len(rows.correct) == 0:
            skipped[task] = f"no inferences of task {task!r} with a known correctness in this clustering."
            continue
        for k, kind in enumerate(PREDICTOR_KINDS):
            ctx.progress(t * len(PREDICTOR_KINDS) + k, total, f"{task}: cross-validating {kind}")
            try:
                trained.append(evaluate_and_store(ctx, rows, kind, clustering.id, model_name))
            except InsufficientData as exc:
                skipped[task] = exc.message
                break
    ctx.progress(total, total, "predictors trained")
    return {"clustering_id": clustering.id, "model": model_name, "trained": trained, "skipped": skipped}


ANALYSIS_HANDLERS = {
    ATLAS_CLUSTER: run_atlas_cluster,
    ATLAS_MAP: run_atlas_map,
    TRAIN_PREDICTORS: run_train_predictors,
}
