"""The clusters of one head in the newest clustering of a model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from attnlens.api.deps import ModelQuery, SessionDep, SettingsDep, StoreDep
from attnlens.api.schemas_analysis import ClusterPublic
from attnlens.errors import NotFound
from attnlens.heads import HeadRef
from attnlens.store.analyses import clustering_shape, head_clusters, latest_clustering

router = APIRouter(tags=["analysis"])


@router.get("/heads/{name}/clusters", response_model=list[ClusterPublic])
def read_head_clusters(
    name: Annotated[str, Path(max_length=16, description="`L{layer}H{head}`, e.g. L3H5.")],
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
            f"{model_name} has no clustering yet; "
            "run `attnlens atlas cluster` (after `attnlens atlas build`)."
        )
    ref.check(*clustering_shape(session, clustering.id))
    rows = head_clusters(session, clustering.id, ref)
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
