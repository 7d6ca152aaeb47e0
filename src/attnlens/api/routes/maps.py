"""The 2-D map of pattern embeddings (computed by the `atlas_map` job; never fitted in a request)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from attnlens.api.deps import ModelQuery, SessionDep, SettingsDep, StoreDep
from attnlens.api.schemas_analysis import MapPublic
from attnlens.errors import NotFound
from attnlens.store.analyses import latest_clustering, latest_map, map_points, map_size
from attnlens.store.map_completions import map_inference_ids

router = APIRouter(tags=["analysis"])

POINT_COLUMNS = ("x", "y", "id", "layer", "head", "task", "correct", "cluster")


@router.get("/maps/latest", response_model=MapPublic)
def read_latest_map(
    store: StoreDep,
    session: SessionDep,
    settings: SettingsDep,
    max_points: Annotated[int, Query(ge=1, le=5_000_000, description="Most points to return.")] = 200_000,
    model: ModelQuery = None,
) -> Response:
    """The newest map's points (x, y, pattern id, layer, head, task, correctness, cluster, inference)
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
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(POINT_COLUMNS)
    points: dict[str, list[Any]] = {
        name: list(values) for name, values in zip(POINT_COLUMNS, columns, strict=True)
    }
    # The completion of each point: what "exclude this completion" on the map page hides. A plain int
    # column (a few bytes a point, next to the x and y floats' twenty) keeps the answer columnar.
    points["inference"] = map_inference_ids(session, pattern_map.id, points["id"])
    body = {
        "map_id": pattern_map.id,
        "model": model_name,
        "total": total,
        "shown": len(rows),
        "clustering_id": clustering.id if clustering is not None else None,
        "points": points,
    }
    # Built by hand: validating 200,000 x 9 values through the response model would take seconds.
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")
