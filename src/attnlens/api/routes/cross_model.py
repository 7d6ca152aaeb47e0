"""Related heads across models: the head x head distance matrix of two models embedded by one AP-MAE
checkpoint, validated against both models' head labels, and one head's nearest heads in other models."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request

from attnlens.analysis.cross_model import CrossModelDistances, head_distances, label_agreement
from attnlens.analysis.stats import Interval
from attnlens.api.deps import ModelQuery, SettingsDep, StoreDep
from attnlens.api.routes.heads import HeadName, profiles_of
from attnlens.api.schemas_cross_model import (
    AcrossHeadPublic,
    CrossModelPublic,
    HeadLabelsPublic,
    IntervalPublic,
    LabelAgreementPublic,
    RelatedAcrossPublic,
)
from attnlens.contracts.head_scores import head_score
from attnlens.errors import InsufficientData, InvalidInput, NotFound
from attnlens.heads import HeadRef
from attnlens.store import Store
from attnlens.store.head_moments import HeadTaskMoments, head_task_moments, shared_embedder
from attnlens.store.head_scores import scored_fingerprint
from attnlens.store.inferences import atlas_models

router = APIRouter(tags=["heads"])

METHOD = (
    "Per task, each head's unit AP-MAE embeddings are summarised by their mean and per-dimension spread; "
    "two heads' distance is the 2-Wasserstein distance between those diagonal Gaussians, averaged over the "
    "tasks both have enough patterns of (square root of the mean squared distance). 0 = same distribution."
)
OtherQuery = Annotated[str, Query(min_length=1, max_length=200, description="The model to compare with.")]
MinPatterns = Annotated[
    int,
    Query(
        ge=2, le=10_000, description="Patterns a head needs of a task for the task to count in its distance."
    ),
]


def _moments(request: Request, store: Store, model: str, embedder: str | None) -> HeadTaskMoments:
    """A model's per-(head, task) moments in one space, recomputed only when its inferences change."""
    cache: dict[tuple[str, str | None], tuple[tuple[int, int, int], HeadTaskMoments]] = (
        request.app.state.__dict__.setdefault("head_task_moments", {})
    )
    key = scored_fingerprint(store, model)
    cached = cache.get((model, embedder))
    if cached is not None and cached[0] == key:
        return cached[1]
    with store.session() as session:
        found = head_task_moments(session, model, embedder)
    cache[(model, embedder)] = (key, found)
    return found


def _distances(
    request: Request, store: Store, model: str, other: str, min_patterns: int
) -> CrossModelDistances:
    with store.session() as session:
        embedder = shared_embedder(session, model, other)
    return head_distances(
        _moments(request, store, model, embedder),
        _moments(request, store, other, embedder),
        min_patterns=min_patterns,
    )


def _labels(request: Request, store: Store, model: str) -> dict[HeadRef, list[str]]:
    """Each head's computed labels (score names); empty when the model has no scored patterns yet."""
    try:
        profiles = profiles_of(request, store, model)
    except (InsufficientData, NotFound):
        return {}
    return {ref: profile.labels for ref, profile in profiles.heads.items()}


def _head_rows(heads: tuple[HeadRef, ...], labels: dict[HeadRef, list[str]]) -> list[HeadLabelsPublic]:
    return [
        HeadLabelsPublic(
            name=h.name, layer=h.layer, head=h.head, labels=[head_score(s).label for s in labels.get(h, [])]
        )
        for h in heads
    ]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _interval_public(interval: Interval | None) -> IntervalPublic | None:
    if interval is None:
        return None
    return IntervalPublic(
        estimate=interval.estimate,
        low=_finite(interval.low),
        high=_finite(interval.high),
        method=interval.method,
    )


@router.get("/cross-model", response_model=CrossModelPublic)
def read_cross_model(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    other: OtherQuery,
    model: ModelQuery = None,
    min_patterns: MinPatterns = 5,
) -> CrossModelPublic:
    """Every head of `model` (default: the served one) against every head of `other`: the distance between
    their AP-MAE embedding distributions, and whether heads with the same label are nearer than random."""
    model_name = model or settings.model.name
    if model_name == other:
        raise InvalidInput(
            "pick two different models; a model's own related heads are at /api/heads/{name}/related."
        )
    found = _distances(request, store, model_name, other, min_patterns)
    labels_a, labels_b = _labels(request, store, model_name), _labels(request, store, other)
    agreement = label_agreement(found, labels_a, labels_b)
    return CrossModelPublic(
        model=model_name,
        other=other,
        embedder=found.embedder,
        method=METHOD,
        tasks=list(found.tasks),
        min_patterns=found.min_patterns,
        rows=_head_rows(found.heads_a, labels_a),
        columns=_head_rows(found.heads_b, labels_b),
        distances=[[_finite(float(v)) for v in row] for row in found.distances],
        agreement=[
            LabelAgreementPublic(
                score=a.label,
                label=head_score(a.label).label,
                heads_a=a.heads_a,
                heads_b=a.heads_b,
                mean_same=a.mean_same,
                mean_all=a.mean_all,
                auc=_interval_public(a.auc),
                row_auc=_interval_public(a.row_auc),
                nearest_hits=a.nearest_hits,
                chance=a.chance,
            )
            for a in agreement
        ],
    )


@router.get("/heads/{name}/related-across", response_model=list[RelatedAcrossPublic])
def read_related_across(
    name: HeadName,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    k: Annotated[int, Query(ge=1, le=50, description="How many heads per other model.")] = 5,
    model: ModelQuery = None,
    min_patterns: MinPatterns = 5,
) -> list[RelatedAcrossPublic]:
    """For each other model of the atlas embedded with the same AP-MAE checkpoint, the heads whose patterns
    are distributed most like this head's (nearest first). Empty when the atlas holds no such model."""
    model_name = model or settings.model.name
    ref = HeadRef.parse(name)
    with store.session() as session:
        others = [m for m in atlas_models(session) if m != model_name]
    out = []
    for other in others:
        try:
            found = _distances(request, store, model_name, other, min_patterns)
        except (InvalidInput, InsufficientData):
            continue  # not comparable: another checkpoint, or no task in common
        if ref not in found.heads_a:
            raise NotFound(f"{model_name} has no mined patterns of head {name}.")
        labels = _labels(request, store, other)
        finite = found.distances[np.isfinite(found.distances)]
        out.append(
            RelatedAcrossPublic(
                model=other,
                embedder=found.embedder,
                min_patterns=min_patterns,
                typical_distance=float(np.median(finite)) if finite.size else None,
                heads=[
                    AcrossHeadPublic(
                        name=h.name,
                        layer=h.layer,
                        head=h.head,
                        distance=d,
                        labels=[head_score(s).label for s in labels.get(h, [])],
                    )
                    for h, d in found.nearest(ref, k)
                ],
            )
        )
    return out
