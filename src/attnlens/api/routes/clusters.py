"""The clusters of one head in the newest clustering of a model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from attnlens.analysis.cluster_panel import Correctness, describe_clusters
from attnlens.api.deps import ModelQuery, SessionDep, SettingsDep, StoreDep
from attnlens.api.routes.patterns import thumbnail_of
from attnlens.api.schemas_analysis import ClusterLabelPublic, ClusterPublic
from attnlens.contracts.head_scores import head_score
from attnlens.errors import NotFound
from attnlens.heads import HeadRef
from attnlens.store.analyses import cluster_labels, clustering_shape, head_clusters, latest_clustering
from attnlens.store.cluster_members import cluster_members
from attnlens.store.patterns import get_head_pattern

router = APIRouter(tags=["analysis"])


@router.get("/heads/{name}/clusters", response_model=list[ClusterPublic])
def read_head_clusters(
    name: Annotated[str, Path(max_length=16, description="`L{layer}H{head}`, e.g. L3H5.")],
    store: StoreDep,
    session: SessionDep,
    settings: SettingsDep,
    model: ModelQuery = None,
) -> list[ClusterPublic]:
    """A head's clusters (`name` like L3H5): size, medoid pattern, task and node-type counts, labels from the
    members' head-type scores with their evidence, three typical members as thumbnails, and the members'
    first-token correctness [95% CI] beside the head's overall rate."""
    ref = HeadRef.parse(name)
    model_name = model or settings.model.name
    clustering = latest_clustering(store, model_name)
    if clustering is None:
        raise NotFound(
            f"{model_name} has no clustering yet; "
            "run `attnlens atlas cluster` (after `attnlens atlas build`)."
        )
    ref.check(*clustering_shape(session, clustering.id))
    rows = head_clusters(session, clustering.id, ref)
    members = cluster_members(session, clustering.id, ref)
    described, overall = describe_clusters(members, {c.label: c.medoid_head_pattern_id for c in rows})
    by_label = {d.label: d for d in described}
    labels = cluster_labels(session, clustering.id, [i for d in described for i in d.examples])
    out = []
    for c in rows:
        d = by_label[c.label]
        examples = [get_head_pattern(session, i) for i in d.examples]
        out.append(
            ClusterPublic(
                label=c.label, size=c.size, medoid_pattern_id=c.medoid_head_pattern_id,
                tasks=(c.attributes or {}).get("task", {}),
                node_types=(c.attributes or {}).get("node_type", {}),
                labels=[
                    ClusterLabelPublic(
                        label=head_score(s).label, score=s, median=d.scores[s].median or 0.0,
                        threshold=head_score(s).threshold, n_applicable=d.scores[s].n_applicable,
                    )
                    for s in d.labels
                ],
                examples=[thumbnail_of(row, labels.get(row.id)) for row in examples if row is not None],
                **_rates(d.correctness, ""), **_rates(overall, "head_"),
            )
        )  # fmt: skip
    return out


def _rates(found: Correctness, prefix: str) -> dict[str, Any]:
    interval = found.interval
    fields = {
        f"{prefix}correct_rate": found.rate,
        f"{prefix}correct_low": interval.low if interval else None,
        f"{prefix}correct_high": interval.high if interval else None,
    }
    return fields if prefix else fields | {"correct": found.correct, "known": found.known}
