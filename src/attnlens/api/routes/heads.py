"""What heads do: the head-type scores, every head's profile and labels (the heads scatter), one head's
profile with its evidence, and examples of a head's patterns by decile of a score."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Query, Request

from attnlens.analysis.anomalies import ERROR, ErrorDistributions, error_distributions
from attnlens.analysis.head_profiles import (
    HeadProfile,
    HeadProfiles,
    decile_bounds,
    head_profiles,
    related_heads,
)
from attnlens.api.deps import ModelQuery, SettingsDep, StoreDep
from attnlens.api.routes.patterns import thumbnail_of
from attnlens.api.schemas_heads import (
    HeadExamplePublic,
    HeadExamplesPublic,
    HeadLabelPublic,
    HeadProfilePublic,
    HeadScoreSpec,
    HeadsOverviewPublic,
    HeadSummaryPublic,
    RelatedHeadPublic,
    ScoreProfilePublic,
)
from attnlens.contracts.head_scores import HEAD_SCORES, SCORE_NAMES, head_score
from attnlens.errors import InvalidInput, NotFound
from attnlens.heads import HeadRef
from attnlens.store import Store
from attnlens.store.analyses import cluster_labels, important_heads, latest_clustering
from attnlens.store.head_scores import (
    ScoreTable,
    head_centroids,
    load_score_table,
    patterns_in_range,
    scored_fingerprint,
)

router = APIRouter(tags=["heads"])

CAVEAT = (
    "Labels are hypotheses: a head carries one when its median score over the atlas's inputs reaches a "
    "threshold fixed before any atlas was built. They say what the head attends to on these inputs, not "
    "what it computes; check a label against the examples and an ablation before relying on it."
)
HeadName = Annotated[str, Path(max_length=20, description="A head, `L{layer}H{head}` (e.g. L3H5).")]
# The score names as an enum, so that the schema lists them (and a client learns them from it).
ScoreKey = Enum("ScoreKey", {name: name for name in SCORE_NAMES}, type=str)  # type: ignore[misc]
ScoreName = Annotated[ScoreKey, Query(description="A score name from GET /api/heads/scores.")]


@dataclass(frozen=True)
class HeadFacts:
    """What the head and anomaly endpoints read, computed from one pass over the model's scored patterns:
    the profiles, each head's error distribution, and the error column for ranking anomalies."""

    profiles: HeadProfiles
    errors: ErrorDistributions
    error_table: ScoreTable  # only the reconstruction_error column


def head_facts(request: Request, store: Store, model: str) -> HeadFacts:
    """The model's head facts, recomputed only when its scored inferences change (a 675,000-pattern atlas
    takes seconds to read)."""
    cache: dict[str, tuple[tuple[int, int, int], HeadFacts]] = request.app.state.__dict__.setdefault(
        "head_facts", {}
    )
    key = scored_fingerprint(store, model)
    cached = cache.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    with store.session() as session:
        table = load_score_table(session, model, (*SCORE_NAMES, ERROR))
    slim = replace(table, scores={ERROR: table.scores[ERROR]})
    facts = HeadFacts(head_profiles(table), error_distributions(slim), slim)
    cache[model] = (key, facts)
    return facts


def centroids_of(request: Request, store: Store, model: str) -> dict[HeadRef, np.ndarray]:
    """Each head's mean AP-MAE direction, recomputed only when the scored inferences change (read lazily:
    only the related-heads view needs it)."""
    cache: dict[str, tuple[tuple[int, int, int], dict[HeadRef, np.ndarray]]] = (
        request.app.state.__dict__.setdefault("head_centroids", {})
    )
    key = scored_fingerprint(store, model)
    cached = cache.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    with store.session() as session:
        centroids = head_centroids(session, model)
    cache[model] = (key, centroids)
    return centroids


def importance_of(store: Store, model: str) -> dict[str, tuple[float, str | None]]:
    """Head name -> (largest mean |SHAP|, its task) over the tasks whose ranking lies above chance."""
    best: dict[str, tuple[float, str | None]] = {}
    for ranking in important_heads(store, model, top=10**6):
        if not ranking.above_chance:
            continue
        for entry in ranking.heads:
            if entry.name not in best or entry.mean_abs_shap > best[entry.name][0]:
                best[entry.name] = (entry.mean_abs_shap, ranking.task)
    return best


def profiles_of(request: Request, store: Store, model: str) -> HeadProfiles:
    return head_facts(request, store, model).profiles


def _head(profiles: HeadProfiles, name: str) -> HeadProfile:
    profile = profiles.get(HeadRef.parse(name))
    if profile is None:
        raise NotFound(
            f"no scored patterns of head {name} for model {profiles.model_name!r} (its grid is "
            f"{profiles.n_layers} x {profiles.n_heads}; an atlas whose scores are not computed yet has none: "
            "queue a head_scores job)."
        )
    return profile


@router.get("/heads/scores", response_model=list[HeadScoreSpec])
def read_head_scores() -> list[HeadScoreSpec]:
    """The head-type scores stored with every pattern: formula, the label each gives and its threshold."""
    return [HeadScoreSpec(**score.__dict__) for score in HEAD_SCORES]


@router.get("/heads", response_model=HeadsOverviewPublic)
def read_heads(
    request: Request, store: StoreDep, settings: SettingsDep, model: ModelQuery = None
) -> HeadsOverviewPublic:
    """Every head of the model with its median of every score and its labels (the heads scatter), over the
    atlas's mined inferences whose scores are computed. Empty before any such inference."""
    profiles = profiles_of(request, store, model or settings.model.name)
    importance = importance_of(store, profiles.model_name)
    return HeadsOverviewPublic(
        model=profiles.model_name, n_layers=profiles.n_layers, n_heads=profiles.n_heads,
        n_inferences=profiles.n_inferences, n_inferences_unscored=profiles.n_inferences_unscored,
        typical=profiles.typical,
        heads=[
            HeadSummaryPublic(
                name=ref.name, layer=ref.layer, head=ref.head, n_patterns=p.n_patterns,
                medians={name: p.median(name) for name in SCORE_NAMES},
                labels=[head_score(name).label for name in p.labels],
                importance=importance.get(ref.name, (None, None))[0],
                importance_task=importance.get(ref.name, (None, None))[1],
            )
            for ref, p in profiles.heads.items()
        ],
    )  # fmt: skip


@router.get("/heads/{name}", response_model=HeadProfilePublic)
def read_head(
    name: HeadName, request: Request, store: StoreDep, settings: SettingsDep, model: ModelQuery = None
) -> HeadProfilePublic:
    """One head's profile: per score its median, deciles and how many patterns it applies to, beside the
    median head's median (the baseline), and the labels it carries with that evidence."""
    profiles = profiles_of(request, store, model or settings.model.name)
    profile = _head(profiles, name)
    scores = [
        ScoreProfilePublic(
            name=s.name, n_applicable=s.n_applicable, median=s.median,
            deciles=list(s.deciles) if s.deciles is not None else None,
            typical=profiles.typical[s.name], labelled=s.labelled,
        )
        for s in profile.scores.values()
    ]  # fmt: skip
    labels = [
        HeadLabelPublic(
            label=head_score(score).label, score=score, median=profile.scores[score].median or 0.0,
            threshold=head_score(score).threshold, typical=profiles.typical[score],
            n_applicable=profile.scores[score].n_applicable,
        )
        for score in profile.labels
    ]  # fmt: skip
    return HeadProfilePublic(
        model=profiles.model_name, name=profile.head.name, layer=profile.head.layer, head=profile.head.head,
        n_patterns=profile.n_patterns, n_inferences=profiles.n_inferences,
        n_inferences_unscored=profiles.n_inferences_unscored, scores=scores, labels=labels, caveat=CAVEAT,
    )  # fmt: skip


@router.get("/heads/{name}/examples", response_model=HeadExamplesPublic)
def read_head_examples(
    name: HeadName,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    score: ScoreName,
    decile: Annotated[int, Query(ge=1, le=10, description="1 = the lowest tenth ... 10 = the highest.")] = 10,
    limit: Annotated[int, Query(ge=1, le=24)] = 6,
    model: ModelQuery = None,
) -> HeadExamplesPublic:
    """Patterns of the head whose `score` lies in decile `decile` of the head's own distribution, highest
    value first: the evidence behind a label, or what the head does when a score is low."""
    score_name = str(score.value)
    model_name = model or settings.model.name
    profile = _head(profiles_of(request, store, model_name), name)
    scored = profile.scores[score_name]
    if scored.deciles is None:
        raise InvalidInput(f"score {score_name} applies to none of {name}'s patterns in this atlas.")
    low, high = decile_bounds(scored, decile)
    with store.session() as session:
        total, rows = patterns_in_range(
            session, model_name, profile.head, score_name,
            low if np.isfinite(low) else None, high if np.isfinite(high) else None, limit,
        )  # fmt: skip
        clustering = latest_clustering(store, model_name)
        labels = (
            cluster_labels(session, clustering.id, [r.id for r in rows]) if clustering is not None else {}
        )
        examples = [
            HeadExamplePublic(
                **thumbnail_of(row, labels.get(row.id)).model_dump(), value=float(getattr(row, score_name))
            )
            for row in rows
        ]
    return HeadExamplesPublic(
        name=profile.head.name, score=score_name, decile=decile,
        low=low if np.isfinite(low) else None, high=high if np.isfinite(high) else None,
        n_in_decile=total, examples=examples,
    )  # fmt: skip


@router.get("/heads/{name}/related", response_model=list[RelatedHeadPublic])
def read_related_heads(
    name: HeadName,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    k: Annotated[int, Query(ge=1, le=50, description="How many heads.")] = 8,
    model: ModelQuery = None,
) -> list[RelatedHeadPublic]:
    """The heads of the same model whose patterns point most the same way in AP-MAE's space: cosine of the
    heads' mean unit embeddings over the atlas, highest first, with their computed labels."""
    model_name = model or settings.model.name
    profiles = profiles_of(request, store, model_name)
    ref = _head(profiles, name).head
    out = []
    for other, similarity in related_heads(centroids_of(request, store, model_name), ref, k):
        found = profiles.get(other)
        labels = [head_score(s).label for s in found.labels] if found is not None else []
        out.append(
            RelatedHeadPublic(
                name=other.name, layer=other.layer, head=other.head, similarity=similarity, labels=labels
            )
        )
    return out
