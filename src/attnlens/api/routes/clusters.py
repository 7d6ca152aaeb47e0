"""The clusters of one head in the newest clustering of a model."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select

from attnlens.api.deps import ModelQuery, SessionDep, SettingsDep, StoreDep
from attnlens.api.schemas_analysis import ClusterPublic
from attnlens.atlas.analysis_data import latest_clustering
from attnlens.errors import NotFound
from attnlens.heads import HeadRef
from attnlens.store.models import Cluster

router = APIRouter(tags=["analysis"])


@router.get("/heads/{name}/clusters", response_model=list[ClusterPublic])
def read_head_clusters(
    name: str,
    store: StoreDep,
    session: SessionDep,
    settings: SettingsDep,
    model: ModelQuery = None,
) -> list[ClusterPublic]:
    """A head's clusters (`name` like L3H5): size, medoid pattern, and task and node-type counts."""
    ref = HeadRef.parse(name)
    model_name = model or settings.model.name
    clustering = latest_clustering(store, model_name)
    if clustering is None:
        raise NotFound(
            f"{model_name} has no clustering yet; run `attnlens atlas cluster` (after `attnlens atlas build`)."
        )
    n_layers, n_heads = session.execute(
        select(func.max(Cluster.layer), func.max(Cluster.head)).where(Cluster.clustering_id == clustering.id)
    ).one()
    ref.check((n_layers or 0) + 1, (n_heads or 0) + 1)
    rows = session.scalars(
        select(Cluster).where(
            Cluster.clustering_id == clustering.id, Cluster.layer == ref.layer, Cluster.head == ref.head
        )
    ).all()
    rows = sorted(rows, key=lambda c: (c.label < 0, c.label))  # real clusters by label, noise last
    return [
        ClusterPublic(
            label=c.label,
            size=c.size,
            medoid_pattern_id=c.medoid_head_pattern_id,
            tasks=(c.attributes or {}).get("task", {}),
            node_types=(c.attributes or {}).get("node_type", {}),
        )
        for c in rows
    ]
