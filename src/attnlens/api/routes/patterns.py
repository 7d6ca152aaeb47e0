"""Head patterns: the full pattern (recomputed by the worker), nearest patterns, search by upload."""

from __future__ import annotations

import base64
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.orm import Session

from attnlens.api.deps import SessionDep, SettingsDep, StoreDep, WorkerDep
from attnlens.api.schemas import (
    NeighborHit,
    NeighborsPublic,
    PatternPublic,
    PatternSearch,
    PatternThumbnail,
)
from attnlens.contracts.head_scores import SCORE_NAMES
from attnlens.contracts.models import MODEL_FAMILIES
from attnlens.errors import InvalidInput, ModelUnavailable, NotFound
from attnlens.index import IndexSpace, PatternIndex
from attnlens.service.protocol import WorkerClient
from attnlens.store import Store
from attnlens.store.analyses import cluster_labels, latest_clustering
from attnlens.store.codecs import unpack_thumbnail
from attnlens.store.inferences import prompt_ids_of
from attnlens.store.models import HeadPattern
from attnlens.store.patterns import (
    PatternFilter,
    get_head_pattern,
    load_embeddings,
    matching_pattern_ids,
)
from attnlens.tokens import TokenDecoder

router = APIRouter(tags=["patterns"])


def valid_pattern_id(
    pattern_id: Annotated[int, Path(ge=1, le=2**62, description="A head pattern id.")], session: SessionDep
) -> HeadPattern:
    row = get_head_pattern(session, pattern_id)
    if row is None:
        raise NotFound(f"no head pattern with id {pattern_id}; open an inference's heads to find ids.")
    return row


PatternDep = Annotated[HeadPattern, Depends(valid_pattern_id)]


def get_index(request: Request) -> PatternIndex:
    index: PatternIndex = request.app.state.index
    index.reload_if_changed()  # a running build saves new versions
    return index


IndexDep = Annotated[PatternIndex, Depends(get_index)]


@router.get("/patterns/{pattern_id}", response_model=PatternPublic)
def read_pattern(row: PatternDep, worker: WorkerDep, settings: SettingsDep) -> PatternPublic:
    """One head's full pattern with token labels (the worker recomputes it; raw patterns are not stored).
    A pattern of another model than the served one is refused (400): the served model would recompute its
    own attention, not that model's."""
    try:
        served = str(worker.status().get("model_name") or "")
    except ModelUnavailable:
        served = ""  # the recomputation below says why the worker cannot answer
    if served and row.inference.model_name != served:
        raise InvalidInput(
            f"pattern {row.id} is of {row.inference.model_name!r}; the worker serves {served!r}, which would "
            "recompute its own attention instead. Serve that model to see the full pattern."
        )
    prompt = prompt_ids_of(row.inference)
    values = worker.head_pattern(prompt, row.head_ref)
    decoder = TokenDecoder.for_model(row.inference.model_name, settings.models_dir)
    tokens = decoder.tokens(prompt)
    return PatternPublic(
        **_identity(row),
        tokens=tokens,
        values=np.round(values, 6).tolist(),
        stats={name: getattr(row, name) for name in SCORE_NAMES},
        hole_query=len(tokens) - 1,
        hole_key=hole_key(tokens),
    )


def hole_key(tokens: list[str]) -> int:
    """The last token before the hole: in a PSM prompt the one before the suffix marker (of whichever
    family's spelling the prompt carries), else the last token (left-to-right: the hole comes next)."""
    for family in MODEL_FAMILIES.values():
        if family.fim is not None and family.fim.prefix in tokens and family.fim.suffix in tokens:
            return max(0, tokens.index(family.fim.suffix) - 1)
    return len(tokens) - 1


def _hits(
    session: Session, store: Store, ids: np.ndarray, scores: np.ndarray, skip: int | None, k: int
) -> list[NeighborHit]:
    found: list[tuple[HeadPattern, float]] = []
    for pattern_id, score in zip(ids.tolist(), scores.tolist(), strict=True):
        if pattern_id < 0 or pattern_id == skip:
            continue
        row = get_head_pattern(session, pattern_id)
        if row is None:  # the index may briefly know rows a concurrent rebuild dropped
            continue
        found.append((row, float(score)))
        if len(found) == k:
            break
    # Each hit's cluster in the newest clustering of its model: one lookup per model, not per hit.
    labels: dict[int, int] = {}
    for model_name in {row.inference.model_name for row, _ in found}:
        clustering = latest_clustering(store, model_name)
        if clustering is not None:
            labels.update(cluster_labels(session, clustering.id, [r.id for r, _ in found]))
    return [
        NeighborHit(**thumbnail_of(row, labels.get(row.id)).model_dump(), score=score) for row, score in found
    ]


def _identity(row: HeadPattern) -> dict[str, Any]:
    """What names a pattern in every answer about it: its id, head and inference, and the task."""
    scenario = row.inference.scenario
    return {
        "id": row.id,
        "name": row.head_ref.name,
        "layer": row.layer,
        "head": row.head,
        "inference_id": row.inference_id,
        "task": scenario.task if scenario else None,
    }


def thumbnail_of(row: HeadPattern, cluster: int | None) -> PatternThumbnail:
    scenario = row.inference.scenario
    image = unpack_thumbnail(row.thumbnail, row.thumbnail_size)
    return PatternThumbnail(
        **_identity(row),
        target_text=scenario.target_text if scenario else None,
        first_token_correct=row.inference.first_token_correct,
        cluster=cluster,
        thumbnail_size=row.thumbnail_size,
        thumbnail=base64.b64encode(image.tobytes()).decode("ascii"),
    )


def _search(
    session: Session,
    store: Store,
    index: PatternIndex,
    space: IndexSpace,
    vector: np.ndarray,
    k: int,
    filters: PatternFilter,
    skip: int | None,
) -> list[NeighborHit]:
    """Nearest patterns within one embedding space: vectors of another model or AP-MAE checkpoint are
    not comparable with `vector`, so they are never candidates."""
    if index.space(space) is None:
        return []
    allowed = None if filters.is_empty else matching_pattern_ids(session, filters)
    if allowed is not None and len(allowed) == 0:
        return []
    result = index.search(vector[None], k + (1 if skip is not None else 0), filter_ids=allowed, space=space)
    return _hits(session, store, result.ids[0], result.scores[0], skip, k)


def served_space(worker: WorkerClient) -> IndexSpace:
    """The embedding space of what the worker embeds now: its model and its AP-MAE checkpoint."""
    status = worker.status()
    model = (status.get("model") or {}).get("name") or status.get("model_name")
    return IndexSpace(str(model), (status.get("apmae") or {}).get("checkpoint"))


@router.get("/patterns/{pattern_id}/thumbnail", response_model=PatternThumbnail)
def read_pattern_thumbnail(row: PatternDep, session: SessionDep, store: StoreDep) -> PatternThumbnail:
    """A pattern's stored thumbnail and what it belongs to, from the database alone (no model call, so it
    answers at once even while builds keep the model busy): what the map shows on hover."""
    clustering = latest_clustering(store, row.inference.model_name)
    cluster = cluster_labels(session, clustering.id, [row.id]).get(row.id) if clustering else None
    return thumbnail_of(row, cluster)


@router.get("/patterns/{pattern_id}/neighbors", response_model=NeighborsPublic)
def read_pattern_neighbors(
    row: PatternDep,
    session: SessionDep,
    store: StoreDep,
    index: IndexDep,
    k: Annotated[int, Query(ge=1, le=200)] = 12,
    layer: Annotated[int | None, Query(ge=0, le=4096)] = None,
    head: Annotated[int | None, Query(ge=0, le=4096)] = None,
    task: Annotated[str | None, Query(max_length=64)] = None,
    first_token_correct: Annotated[bool | None, Query()] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
) -> NeighborsPublic:
    """The k patterns nearest to this one in the atlas (AP-MAE embeddings), with optional filters, among
    the patterns of the same model embedded by the same AP-MAE checkpoint (one embedding space)."""
    vector = load_embeddings(session, [row.id])[0]
    filters = PatternFilter(
        layer=layer, head=head, task=task, first_token_correct=first_token_correct, model_name=model
    )
    space = IndexSpace(row.inference.model_name, row.inference.embedder)
    return NeighborsPublic(
        query_id=row.id, hits=_search(session, store, index, space, vector, k, filters, skip=row.id)
    )


@router.post("/patterns/search", response_model=NeighborsPublic)
def search_patterns(
    body: PatternSearch, session: SessionDep, store: StoreDep, index: IndexDep, worker: WorkerDep
) -> NeighborsPublic:
    """Nearest stored patterns to an uploaded attention matrix (the worker embeds it with AP-MAE), among
    the served model's patterns embedded by the worker's checkpoint (its embedding space)."""
    vector = worker.embed_pattern(np.asarray(body.values, dtype=np.float32))
    filters = PatternFilter(
        layer=body.layer, head=body.head, task=body.task, first_token_correct=body.first_token_correct
    )
    space = served_space(worker)
    return NeighborsPublic(
        query_id=None, hits=_search(session, store, index, space, vector, body.k, filters, skip=None)
    )
