"""The 2-D map of pattern embeddings (computed by the `atlas_map` job; never fitted in a request)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from attnlens.api.deps import ModelQuery, SessionDep, SettingsDep, StoreDep
from attnlens.api.schemas_analysis import MapPublic
from attnlens.errors import NotFound
from attnlens.store.analyses import latest_clustering, latest_map, map_points, map_size

router = APIRouter(tags=["analysis"])


@router.get("/maps/latest", response_model=MapPublic)
def read_latest_map(
    store: StoreDep,
    session: SessionDep,
    settings: SettingsDep,
    max_points: Annotated[int, Query(ge=1, le=5_000_000, description="Most points to return.")] = 200_000,
    model: ModelQuery = None,
) -> Response:
    """The newest map's points (x, y, pattern id, layer, head, task, correctness, cluster)
    as column arrays."""
    model_name = model or settings.model.name
    pattern_map = latest_map(store, model_name)
    if pattern_map is None:
        raise NotFound(
            f"{model_name} has no map yet; run `attnlens atlas map` (after `attnlens atlas build`)."
        )
    total = (pattern_map.parameters or {}).get("points")
    if total is None:
        total = map_size(session, pattern_map.id)
    clustering = latest_clustering(store, model_name)
    rows = map_points(
        session,
        pattern_map.id,
        clustering.id if clustering is not None else None,
        total=total,
        max_points=max_points,
    )
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    names = ("x", "y", "id", "layer", "head", "task", "correct", "cluster")
    body = {
        "map_id": pattern_map.id,
        "model": model_name,
        "total": total,
        "shown": len(rows),
        "clustering_id": clustering.id if clustering is not None else None,
        "points": {name: list(values) for name, values in zip(names, columns, strict=True)},
    }
    # Built by hand: validating 200,000 x 8 values through the response model would take seconds.
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")
