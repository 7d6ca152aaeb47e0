"""The `atlas_cluster` job: per-head UMAP + HDBSCAN over one model's stored patterns, one head in memory
at a time; a `Clustering` with its `Cluster` summaries and a `ClusterAssignment` per pattern. Each head is
written in one transaction, so a requeued job resumes after the last finished head. A run counts as
finished when its `parameters["complete"]` is true; readers use only finished runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attnlens.atlas.jobs import JobContext
from attnlens.store.analysis_rows import (
    ClusterRow,
    choose_selection,
    clustering_of_job,
    heads_with_clusters,
    load_head_rows,
    mark_complete,
    save_head_clustering,
    selected_heads,
)
from attnlens.store.models import Clustering

CLUSTERING_FIELDS = (
    "seed", "umap_components", "umap_neighbors", "umap_min_dist", "umap_metric", "hdbscan_min_samples",
    "hdbscan_min_cluster_size", "hdbscan_allow_single_cluster", "dedup_jitter",
)  # fmt: skip


def model_of(ctx: JobContext) -> str:
    """The model an analysis job is about: its `model` parameter, else the served model."""
    return str(ctx.job.parameters.get("model") or ctx.settings.model.name)


def run_atlas_cluster(ctx: JobContext) -> dict[str, Any]:
    """Cluster every head of one model's stored patterns; progress is counted in heads."""
    from attnlens.analysis import cluster_head

    settings = ctx.settings.analysis
    with ctx.store.session() as session:
        selection = choose_selection(session, model_of(ctx))
        heads = selected_heads(session, selection)
    parameters = {name: getattr(settings, name) for name in CLUSTERING_FIELDS}
    clustering_id = clustering_of_job(ctx.store, ctx.job.id, selection, parameters)
    done = heads_with_clusters(ctx.store, clustering_id)
    skipped: dict[str, str] = {}
    n_clusters = n_patterns = n_noise = 0
    for i, head in enumerate(heads):
        if ctx.should_stop():
            return {"clustering_id": clustering_id, "heads_done": i, "heads": len(heads), "complete": False}
        ctx.progress(i, len(heads), f"clustering {head.name}")
        if head in done:
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
        clusters = [
            ClusterRow(
                label=s.label,
                size=s.size,
                medoid_pattern_id=None if s.medoid is None else int(rows.pattern_ids[s.medoid]),
                attributes=s.attributes,
            )
            for s in result.clusters
        ]
        save_head_clustering(ctx.store, clustering_id, head, clusters, rows.pattern_ids, result.labels)
    mark_complete(ctx.store, Clustering, clustering_id, **selection.to_dict())
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
