"""The `atlas_cluster` job: per-head UMAP + HDBSCAN over one model's stored patterns, one head in memory
at a time; a `Clustering` with its `Cluster` summaries and a `ClusterAssignment` per pattern. Each head is
written in one transaction, so a requeued job resumes after the last finished head. A run counts as
finished when its `parameters["complete"]` is true; readers use only finished runs.

A new pattern (pasted code) gets its clusters by a kNN vote (`attnlens.atlas.prediction`), not by HDBSCAN,
so the job also measures how often that vote agrees with HDBSCAN: per head, a seeded 20% of its labelled
rows (noise included: -1 is a value the cluster-id predictors see) are assigned by the same
`ClusterAssigner` from the other 80% (at most `MAX_LABELLED_PER_HEAD` of them, as a request keeps), and
the agreement rate with a Wilson 95% interval, per head and overall, is stored in the clustering's
`parameters["knn_agreement"]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlens.atlas.jobs import JobContext
from attnlens.atlas.prediction import MAX_LABELLED_PER_HEAD
from attnlens.contracts.jobs import job_model
from attnlens.heads import HeadRef
from attnlens.store.analyses import head_assignments
from attnlens.store.analysis_rows import (
    ClusterRow,
    Selection,
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
KNN_HOLDOUT = 0.2  # share of each head's labelled rows held out to measure the kNN vote


def model_of(ctx: JobContext) -> str:
    """The model an analysis job is about: its `model` parameter, else the served model."""
    return job_model(ctx.job.parameters, ctx.settings.model.name)


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
    agreement: dict[HeadRef, _HeadAgreement] = {}
    skipped: dict[str, str] = {}
    n_clusters = n_patterns = n_noise = 0
    for i, head in enumerate(heads):
        if ctx.should_stop():
            return {"clustering_id": clustering_id, "heads_done": i, "heads": len(heads), "complete": False}
        ctx.progress(i, len(heads), f"clustering {head.name}")
        if head in done:  # clustered by an earlier attempt of this job: measure on its stored labels
            agreement[head] = _stored_agreement(ctx, selection, clustering_id, head)
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
        agreement[head] = _agreement(ctx, head, rows.embeddings, result.labels)
    knn = knn_agreement_summary(agreement, ctx.settings.analysis.knn_k)
    mark_complete(ctx.store, Clustering, clustering_id, **selection.to_dict(), knn_agreement=knn)
    ctx.progress(len(heads), len(heads), "clustering finished")
    return {
        "clustering_id": clustering_id,
        **selection.to_dict(),
        "heads": len(heads),
        "clusters": n_clusters,
        "patterns_this_run": n_patterns,
        "noise_fraction_this_run": round(n_noise / n_patterns, 4) if n_patterns else None,
        "heads_all_noise": skipped,
        "knn_agreement": {key: value for key, value in knn.items() if key != "per_head"},
    }


@dataclass(frozen=True)
class _HeadAgreement:
    agree: int  # held-out rows whose kNN-voted label is their HDBSCAN label
    held_out: int
    majority_agree: int  # baseline: held-out rows whose label is the head's most common one
    clustered: bool  # HDBSCAN found at least one cluster (an all-noise head agrees trivially)


def _agreement(ctx: JobContext, head: HeadRef, embeddings: np.ndarray, labels: np.ndarray) -> _HeadAgreement:
    """One head's kNN vote against its labels; seeded by the head, so a resumed job measures the same
    rows."""
    from attnlens.analysis.assign import holdout_agreement

    measured = holdout_agreement(
        embeddings,
        labels,
        ctx.settings.analysis.knn_k,
        seed=(ctx.settings.analysis.seed, head.layer, head.head),
        holdout=KNN_HOLDOUT,
        max_reference=MAX_LABELLED_PER_HEAD,
    )
    clustered = bool(np.any(np.asarray(labels) >= 0))
    return _HeadAgreement(measured.agree, measured.held_out, measured.majority_agree, clustered)


def _stored_agreement(
    ctx: JobContext, selection: Selection, clustering_id: int, head: HeadRef
) -> _HeadAgreement:
    """`_agreement` of a head an earlier attempt of the job clustered, from its stored labels."""
    with ctx.store.session() as session:
        rows = load_head_rows(session, selection, head)
        ids, labels = head_assignments(session, clustering_id, head)
    label_of = dict(zip(ids.tolist(), labels.tolist(), strict=True))
    keep = np.asarray([pid in label_of for pid in rows.pattern_ids.tolist()], dtype=bool)
    stored = np.asarray([label_of[pid] for pid in rows.pattern_ids[keep].tolist()], dtype=np.int64)
    return _agreement(ctx, head, rows.embeddings[keep], stored)


def _rate(agree: int, held_out: int) -> dict[str, Any]:
    """{agree, held_out, rate, low, high}: a proportion with its Wilson 95% interval (None: nothing held
    out)."""
    from attnlens.analysis.stats import wilson_interval

    if held_out == 0:
        return {"agree": 0, "held_out": 0, "rate": None, "low": None, "high": None}
    interval = wilson_interval(agree, held_out)
    return {
        "agree": agree,
        "held_out": held_out,
        "rate": round(interval.estimate, 4),
        "low": round(interval.low, 4),
        "high": round(interval.high, 4),
    }


def knn_agreement_summary(agreement: dict[HeadRef, _HeadAgreement], k: int) -> dict[str, Any]:
    """The stored `knn_agreement`: `overall` (every held-out row of every head), `clustered_heads` (only
    heads where HDBSCAN found a cluster: an all-noise head agrees trivially) and `per_head`, each a rate
    with its Wilson 95% interval; the pooled ones also give the rate of the baseline that gives every
    held-out row its head's most common label (`majority_label`)."""

    def pooled(heads: list[_HeadAgreement]) -> dict[str, Any]:
        held_out = sum(h.held_out for h in heads)
        baseline = _rate(sum(h.majority_agree for h in heads), held_out)
        return {**_rate(sum(h.agree for h in heads), held_out), "majority_label": baseline}

    return {
        "holdout": KNN_HOLDOUT,
        "k": k,
        "max_reference": MAX_LABELLED_PER_HEAD,
        "noise_is_a_label": True,
        "overall": pooled(list(agreement.values())),
        "clustered_heads": {
            "heads": sum(h.clustered for h in agreement.values()),
            **pooled([h for h in agreement.values() if h.clustered]),
        },
        "per_head": {ref.name: _rate(a.agree, a.held_out) for ref, a in sorted(agreement.items())},
    }
