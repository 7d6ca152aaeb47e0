"""The 2-D map of pattern embeddings (computed by the `atlas_map` job; never fitted in a request)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import func, select

from attnlens.api.deps import ModelQuery, SessionDep, SettingsDep, StoreDep
from attnlens.api.schemas_analysis import MapPublic
from attnlens.atlas.analysis_data import latest_clustering, latest_map
from attnlens.errors import NotFound
from attnlens.store.models import ClusterAssignment, HeadPattern, Inference, MapPoint, Scenario

router = APIRouter(tags=["analysis"])

# Knuth's multiplicative hash: (id * 2654435761) mod 2^32 spreads consecutive ids evenly over [0, 2^32), so
# "hash < fraction * 2^32" keeps a fixed, well-mixed share of the points (the same ones on every call)
# without a random draw or reading every row. Consecutive ids are the heads of one inference, so a
# stride would keep the same few heads; the hash does not.
_HASH_MULTIPLIER = 2_654_435_761
_HASH_RANGE = 2**32


@router.get("/maps/latest", response_model=MapPublic)
def read_latest_map(
    store: StoreDep,
    session: SessionDep,
    settings: SettingsDep,
    max_points: Annotated[int, Query(ge=1, le=5_000_000, description="Most points to return.")] = 200_000,
    model: ModelQuery = None,
) -> Response:
    """The newest map's points (x, y, pattern id, layer, head, task, correctness, cluster) as column arrays."""
    model_name = model or settings.model.name
    pattern_map = latest_map(store, model_name)
    if pattern_map is None:
        raise NotFound(
            f"{model_name} has no map yet; run `attnlens atlas map` (after `attnlens atlas build`)."
        )
    total = (pattern_map.parameters or {}).get("points")
    if total is None:
        total = session.scalar(select(func.count()).where(MapPoint.pattern_map_id == pattern_map.id)) or 0
    clustering = latest_clustering(store, model_name)
    clustering_id = clustering.id if clustering is not None else -1
    query = (
        select(MapPoint.x, MapPoint.y, MapPoint.head_pattern_id, HeadPattern.layer, HeadPattern.head, Scenario.task,
               Inference.first_token_correct, ClusterAssignment.label)
        .join(HeadPattern, HeadPattern.id == MapPoint.head_pattern_id)
        .join(Inference, Inference.id == HeadPattern.inference_id)
        .outerjoin(Scenario, Scenario.id == Inference.scenario_id)
        .outerjoin(
            ClusterAssignment,
            (ClusterAssignment.head_pattern_id == MapPoint.head_pattern_id) & (ClusterAssignment.clustering_id == clustering_id),
        )
        .where(MapPoint.pattern_map_id == pattern_map.id)
        .order_by(MapPoint.head_pattern_id)
    )  # fmt: skip
    if total > max_points:
        threshold = int(_HASH_RANGE * max_points / total)
        query = query.where((MapPoint.head_pattern_id * _HASH_MULTIPLIER) % _HASH_RANGE < threshold).limit(
            max_points
        )
    rows = session.execute(query).all()
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
