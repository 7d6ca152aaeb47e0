"""The `atlas_map` job: the global 2-D UMAP map of one model's patterns as a `PatternMap` with a
`MapPoint` per pattern (fitted on a seeded sample, the rest placed by transform)."""

from __future__ import annotations

from typing import Any

import numpy as np

from attnlens.atlas.clustering import model_of
from attnlens.atlas.jobs import JobContext
from attnlens.store.analysis_rows import (
    choose_selection,
    create_map,
    iter_selection_embeddings,
    mark_complete,
    save_map_points,
)
from attnlens.store.models import PatternMap

MAP_FIELDS = ("seed", "map_fit_sample", "map_neighbors", "map_min_dist", "umap_metric", "dedup_jitter")
_WRITE_CHUNK = 20_000


def run_atlas_map(ctx: JobContext) -> dict[str, Any]:
    """Fit the 2-D map on a seeded sample of one model's patterns, place the rest, store every point."""
    from attnlens.analysis import build_cluster_map

    settings = ctx.settings.analysis
    with ctx.store.session() as session:
        selection = choose_selection(session, model_of(ctx))
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
    map_id = create_map(ctx.store, selection.model_name, {**parameters, **selection.to_dict()}, ctx.job.id)
    for start in range(0, n, _WRITE_CHUNK):
        stop = min(n, start + _WRITE_CHUNK)
        save_map_points(
            ctx.store, map_id, ids[start:stop], result.coordinates[start:stop], fitted[start:stop]
        )
        ctx.progress(n + stop, 2 * n, f"stored {stop:,} of {n:,} points")
    mark_complete(ctx.store, PatternMap, map_id, points=n)
    return {"map_id": map_id, **selection.to_dict(), "points": n, "fitted_on": int(fitted.sum())}
