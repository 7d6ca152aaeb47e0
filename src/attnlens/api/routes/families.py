"""Pattern families: the newest run of the `pattern_families` job (one global clustering of every head's
patterns of a model), one family in full, and the family of every point of the cluster map (for colouring
it). Computed by the job (`attnlens families`), never in a request."""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from attnlens.api.deps import ModelQuery, SettingsDep, StoreDep
from attnlens.api.routes.jobs import job_public
from attnlens.api.routes.patterns import thumbnail_of
from attnlens.api.schemas import JobPublic
from attnlens.api.schemas_families import (
    CompletionRatePublic,
    FamiliesPublic,
    FamilyDetailPublic,
    FamilyLabelPublic,
    FamilyPublic,
    FamilyRunPublic,
    FamilyScorePublic,
    HeadCountPublic,
    LayerCountPublic,
)
from attnlens.config import Settings
from attnlens.contracts.head_scores import head_score
from attnlens.contracts.jobs import PATTERN_FAMILIES, job_model
from attnlens.errors import NotFound
from attnlens.store import Store
from attnlens.store.analyses import (
    cluster_labels,
    jobs_of_kind,
    latest_clustering,
    latest_map,
    map_points,
    map_size,
    queued_job_ids,
)
from attnlens.store.families import (
    NO_FAMILY,
    family_of_run,
    latest_family_run,
    map_family_labels,
    patterns_for_thumbnails,
    run_families,
)
from attnlens.store.inferences import atlas_models
from attnlens.store.jobs import past_rates
from attnlens.store.models import FamilyRun, PatternFamily

router = APIRouter(tags=["families"])

COMMAND = "attnlens families"
FamilyLabel = Annotated[int, Path(ge=0, le=1_000_000, description="A family's number in the newest run.")]


def _model(model: str | None, settings: Settings, store: Store) -> str:
    """The model asked about: the served one, or another with mined inferences in the atlas (else 404)."""
    name = model or settings.model.name
    if name != settings.model.name:
        with store.session() as session:
            known = atlas_models(session)
        if name not in known:
            raise NotFound(
                f"the atlas holds no inferences of model {name!r}; its models: {', '.join(known) or 'none'}."
            )
    return name


def _rate(stored: dict[str, Any] | None) -> CompletionRatePublic | None:
    return None if stored is None else CompletionRatePublic(**stored)


def _run(run: FamilyRun) -> FamilyRunPublic:
    p = run.parameters or {}
    return FamilyRunPublic(
        id=run.id, created_at=run.created_at, job_id=run.job_id, embedder=run.embedder, parameters=p,
        n_patterns=int(p.get("patterns", 0)), n_fitted=int(p.get("fitted_on", 0)),
        n_noise=int(p.get("noise", 0)), n_families=int(p.get("families", 0)),
        n_scored_patterns=int(p.get("scored_patterns", 0)), reason=p.get("reason"),
    )  # fmt: skip


def _family(row: PatternFamily, run: FamilyRun, examples: list[Any]) -> FamilyPublic:
    s = row.summary or {}
    atlas = (run.parameters or {}).get("atlas_correctness")
    correctness = _rate(s.get("correctness"))
    differs = None
    if correctness is not None and atlas is not None:
        differs = not correctness.low <= float(atlas["rate"]) <= correctness.high
    scores = s.get("scores", {})
    labels = [
        FamilyLabelPublic(
            label=head_score(name).label, score=name, median=float(scores[name]["median"]),
            threshold=head_score(name).threshold, n_applicable=int(scores[name]["n_applicable"]),
        )
        for name in s.get("labels", [])
    ]  # fmt: skip
    total = int((run.parameters or {}).get("patterns", 0))
    return FamilyPublic(
        label=row.label, size=row.size, share=row.size / total if total else 0.0,
        n_fitted=int(s.get("n_fitted", 0)), medoid_pattern_id=row.medoid_head_pattern_id,
        example_ids=[int(i) for i in s.get("examples", [])], labels=labels,
        scores=[FamilyScorePublic(**profile) for profile in scores.values()],
        n_scored=int(s.get("n_scored", 0)),
        layers=[LayerCountPublic(layer=int(a), count=int(c)) for a, c in s.get("layers", [])],
        heads=[HeadCountPublic(name=str(a), count=int(c)) for a, c in s.get("heads", [])],
        n_heads=int(s.get("n_heads", 0)), tasks=dict(s.get("tasks", {})),
        n_inferences=int(s.get("n_inferences", 0)), correctness=correctness, differs_from_atlas=differs,
        examples=examples,
    )  # fmt: skip


def _thumbnails(store: Store, model: str, wanted: list[list[int]]) -> list[list[Any]]:
    """Per list of pattern ids, their thumbnails (ids no longer stored are skipped), in a few queries."""
    ids = [i for group in wanted for i in group]
    if not ids:
        return [[] for _ in wanted]
    clustering = latest_clustering(store, model)
    with store.session() as session:
        rows = patterns_for_thumbnails(session, ids)
        clusters = cluster_labels(session, clustering.id, ids) if clustering is not None else {}
        return [[thumbnail_of(rows[i], clusters.get(i)) for i in group if i in rows] for group in wanted]


def _job(store: Store, settings: Settings, model: str, has_run: bool) -> JobPublic | None:
    jobs = [
        j
        for j in jobs_of_kind(store, PATTERN_FAMILIES, 20)
        if job_model(j.parameters, settings.model.name) == model
    ]
    pending = next((j for j in jobs if j.state in ("queued", "running")), None)
    job = pending or (jobs[0] if jobs and not has_run else None)
    return job_public(job, queued_job_ids(store), past_rates(store)) if job is not None else None


@router.get("/families", response_model=FamiliesPublic)
def read_families(
    store: StoreDep,
    settings: SettingsDep,
    thumbnails: Annotated[
        int, Query(ge=0, le=24, description="Example thumbnails to include per family (the first examples).")
    ] = 3,
    model: ModelQuery = None,
) -> FamiliesPublic:
    """The newest pattern families of a model: one UMAP + HDBSCAN clustering of every head's patterns
    together (fitted on a seeded sample of `analysis.family_fit_sample` patterns, the rest assigned by a
    kNN vote), so a family groups alike patterns across heads and layers.

    Per family: its size and share; the labels it carries with their evidence (per head-type score, the
    median over the members the score applies to, labelled when it reaches the score's threshold, the rule
    heads follow); where it occurs (members per layer, the top heads, members per task); the first-token
    correctness of its members' completions, each completion counted once, with a Wilson 95% interval,
    beside `atlas_correctness`, the same rate over every completion of the run (the honest baseline);
    and example patterns (the medoid, then the members nearest it), with `thumbnails` of them inline.

    Before any run finishes: an empty `families`, a `reason`, and the job making one (if any). A model
    other than the served one must have mined inferences in the atlas (else 404)."""
    name = _model(model, settings, store)
    run = latest_family_run(store, name)
    job = _job(store, settings, name, run is not None)
    if run is None:
        reason = f"No pattern families of {name} yet: queue a pattern_families job or run `{COMMAND}`."
        return FamiliesPublic(
            model=name, run=None, reason=reason, atlas_correctness=None, correctness_leaves_out_tasks=[],
            families=[], job=job,
        )  # fmt: skip
    with store.session() as session:
        rows = run_families(session, run.id)
    shown = _thumbnails(
        store, name, [[int(i) for i in (r.summary or {}).get("examples", [])][:thumbnails] for r in rows]
    )
    p = run.parameters or {}
    return FamiliesPublic(
        model=name, run=_run(run), reason=p.get("reason") if not rows else None,
        atlas_correctness=_rate(p.get("atlas_correctness")),
        correctness_leaves_out_tasks=list(p.get("correctness_leaves_out_tasks", [])),
        families=[_family(row, run, examples) for row, examples in zip(rows, shown, strict=True)], job=job,
    )  # fmt: skip


@router.get("/families/points")
def read_family_points(
    store: StoreDep,
    settings: SettingsDep,
    max_points: Annotated[
        int, Query(ge=1, le=5_000_000, description="Most points, as for the map.")
    ] = 200_000,
    model: ModelQuery = None,
) -> Response:
    """The family of every point of the newest cluster map (GET /api/maps/latest with the same
    `max_points` returns the same points), for colouring the map by family: `{map_id, run_id, model,
    shown, ids, family}` with `ids` the points' pattern ids in the map's order and `family` each one's
    family (-1: noise; null: a point the run did not assign). Before any family run: every `family` null
    and a `reason`. 404 when the model has no map."""
    name = _model(model, settings, store)
    pattern_map = latest_map(store, name)
    if pattern_map is None:
        raise NotFound(f"{name} has no map yet; run `attnlens atlas map` (after `attnlens atlas build`).")
    run = latest_family_run(store, name)
    total = (pattern_map.parameters or {}).get("points")
    with store.session() as session:
        if total is None:
            total = map_size(session, pattern_map.id)
        ids = np.asarray(
            [r[2] for r in map_points(session, pattern_map.id, None, total=total, max_points=max_points)],
            dtype=np.int64,
        )
        family: list[int | None] = [None] * len(ids)
        if run is not None and len(ids):
            all_ids, labels = map_family_labels(session, run.id, pattern_map.id)
            at = np.minimum(np.searchsorted(all_ids, ids), len(all_ids) - 1)
            found = all_ids[at] == ids
            family = [
                int(v) if ok and v != NO_FAMILY else None for v, ok in zip(labels[at], found, strict=True)
            ]
    body = {
        "map_id": pattern_map.id,
        "run_id": run.id if run is not None else None,
        "model": name,
        "shown": len(ids),
        "reason": None if run is not None else f"No pattern families of {name} yet: run `{COMMAND}`.",
        "ids": ids.tolist(),
        "family": family,
    }
    # Built by hand, as GET /api/maps/latest is: validating 200,000 x 2 values would take seconds.
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


@router.get("/families/{label}", response_model=FamilyDetailPublic)
def read_family(
    label: FamilyLabel, store: StoreDep, settings: SettingsDep, model: ModelQuery = None
) -> FamilyDetailPublic:
    """One family of the newest run in full: everything GET /api/families says of it, with the stored
    thumbnails of all its example patterns (the medoid, then the members nearest it). 404 when there is no
    run yet or no such family (the run's families are numbered 0 .. n_families - 1)."""
    name = _model(model, settings, store)
    run = latest_family_run(store, name)
    if run is None:
        raise NotFound(
            f"no pattern families of {name} yet; run `{COMMAND}` (or queue a pattern_families job)."
        )
    with store.session() as session:
        row = family_of_run(session, run.id, label)
    if row is None:
        count = int((run.parameters or {}).get("families", 0))
        raise NotFound(
            f"no family {label} in run {run.id} of {name}: it has {count} families"
            f"{f', numbered 0-{count - 1}' if count else ''}; GET /api/families lists them."
        )
    (examples,) = _thumbnails(store, name, [[int(i) for i in (row.summary or {}).get("examples", [])]])
    p = run.parameters or {}
    return FamilyDetailPublic(
        model=name, run=_run(run), atlas_correctness=_rate(p.get("atlas_correctness")),
        correctness_leaves_out_tasks=list(p.get("correctness_leaves_out_tasks", [])),
        family=_family(row, run, examples),
    )  # fmt: skip
