"""Completions in the atlas: list, one with its tokens, the grid of its heads, and deleting pasted code."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.orm import Session

from attnlens.analysis.anomalies import ErrorDistributions
from attnlens.api.deps import InferenceDep, SessionDep, SettingsDep, StoreDep
from attnlens.api.routes.heads import head_facts
from attnlens.api.schemas import (
    DeletedPublic,
    HeadCell,
    HeadGridPublic,
    InferencePage,
    InferencePublic,
    InferenceSummary,
)
from attnlens.atlas.indexing import sync_index
from attnlens.contracts.head_scores import HEAD_SCORES_VERSION, RELATIONAL_SCORE_NAMES
from attnlens.contracts.models import split_prompt
from attnlens.contracts.results import PastedGrid
from attnlens.errors import AttnLensError, NotFound
from attnlens.heads import HeadRef
from attnlens.store.analyses import cluster_labels, latest_clustering
from attnlens.store.codecs import unpack_thumbnail, unpack_token_ids
from attnlens.store.inferences import (
    InferenceFilter,
    delete_pasted_inference,
    inference_heads,
    list_inferences,
    prompt_ids_of,
)
from attnlens.store.models import PASTED, Inference
from attnlens.tokens import TokenDecoder

router = APIRouter(tags=["inferences"])
log = logging.getLogger(__name__)


def inference_summary(inference: Inference) -> InferenceSummary:
    scenario = inference.scenario
    return InferenceSummary(
        id=inference.id,
        model_name=inference.model_name,
        source="pasted" if inference.source == PASTED else "mined",
        task=scenario.task if scenario else None,
        file_path=scenario.corpus_file.path if scenario else None,
        target_text=scenario.target_text if scenario else None,
        completion_text=inference.completion_text,
        first_token_correct=inference.first_token_correct,
        span_correct=inference.span_correct,
        expected_token_prob=inference.expected_token_prob,
        top1_prob=inference.top1_prob,
        top1_margin=inference.top1_margin,
        next_token_entropy=inference.next_token_entropy,
    )


@router.get("/inferences", response_model=InferencePage)
def read_inferences(
    session: SessionDep,
    task: Annotated[str | None, Query(max_length=64, description="Only this mining task.")] = None,
    first_token_correct: Annotated[
        bool | None, Query(description="Only right (true) or wrong (false).")
    ] = None,
    span_correct: Annotated[bool | None, Query()] = None,
    model: Annotated[str | None, Query(max_length=200, description="Only this target model.")] = None,
    file: Annotated[
        str | None, Query(max_length=500, description="Substring of the source file path.")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in the target or the completion.")
    ] = None,
    source: Annotated[
        Literal["mined", "pasted"] | None,
        Query(description="Only the atlas's mined completions, or only pasted code."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> InferencePage:
    """Completions, newest first, with filters and paging."""
    where = InferenceFilter(
        task=task,
        first_token_correct=first_token_correct,
        span_correct=span_correct,
        model_name=model,
        file=file,
        text=q,
        source=source,
    )
    total, rows = list_inferences(session, where, limit=limit, offset=offset)
    return InferencePage(total=total, limit=limit, offset=offset, items=[inference_summary(r) for r in rows])


@router.get("/inferences/{inference_id}", response_model=InferencePublic)
def read_inference(inference: InferenceDep, settings: SettingsDep) -> InferencePublic:
    """One completion: prompt, target and completion as tokens, with the hole's place."""
    decoder = TokenDecoder.for_model(inference.model_name, settings.models_dir)
    scenario = inference.scenario
    prompt_ids = prompt_ids_of(inference)
    target_ids = unpack_token_ids(scenario.target_ids) if scenario else []
    prefix, suffix = (
        split_prompt(prompt_ids, scenario.mode, scenario.n_prefix_tokens, scenario.n_suffix_tokens)
        if scenario
        else (prompt_ids, [])
    )
    return InferencePublic(
        **inference_summary(inference).model_dump(),
        mode=scenario.mode if scenario else None,
        node_type=scenario.node_type if scenario else None,
        hole_start=scenario.hole_start if scenario else None,
        hole_end=scenario.hole_end if scenario else None,
        prompt_tokens=decoder.tokens(prompt_ids),
        prefix_text=decoder.text(prefix),
        suffix_text=decoder.text(suffix),
        target_tokens=decoder.tokens(target_ids),
        completion_tokens=decoder.tokens(unpack_token_ids(inference.completion_ids)),
        n_prefix_tokens=scenario.n_prefix_tokens if scenario else None,
        embedder=inference.embedder,
        head_scores_computed=inference.head_scores_version == HEAD_SCORES_VERSION,
        created_at=inference.created_at,
    )


@router.get("/inferences/{inference_id}/heads", response_model=HeadGridPublic)
def read_inference_heads(
    inference: InferenceDep, session: SessionDep, store: StoreDep, request: Request
) -> HeadGridPublic:
    """Every head of one inference: thumbnails packed in one payload, with names, statistics and each
    head's cluster in the newest clustering of the inference's model (null where it has none)."""
    clustering = latest_clustering(store, inference.model_name)
    return head_grid(
        session,
        inference.id,
        clustering_id=clustering.id if clustering is not None else None,
        errors=head_facts(request, store, inference.model_name).errors,
    )


@router.delete("/inferences/{inference_id}", response_model=DeletedPublic)
def delete_inference(
    inference_id: Annotated[int, Path(ge=1, le=2**62, description="A pasted inference's id.")],
    store: StoreDep,
    settings: SettingsDep,
) -> DeletedPublic:
    """Delete pasted code: the inference, its head patterns (with their cluster assignments and map
    points) and its index entries. Mined completions belong to the atlas and are refused (400)."""
    deleted = delete_pasted_inference(store, inference_id)
    try:
        sync_index(settings, store)  # the index follows the database: the deleted patterns leave it
    except (AttnLensError, OSError) as exc:
        # The rows are gone (searches skip ids they cannot load); the next sync drops their vectors.
        log.warning("index not synced after deleting inference %d: %s", inference_id, exc)
    return DeletedPublic(inference_id=inference_id, head_patterns=len(deleted))


def head_grid(
    session: Session,
    inference_id: int,
    *,
    clustering_id: int | None = None,
    clusters: Mapping[str, int] | None = None,
    errors: ErrorDistributions | None = None,
) -> HeadGridPublic:
    """The packed head grid of one inference. Each cell's cluster comes from the stored assignments of
    `clustering_id`, or from `clusters` (head name -> label) for a pattern placed by kNN (pasted code)."""
    rows = inference_heads(session, inference_id)
    if not rows:
        raise NotFound(f"inference {inference_id} has no stored head patterns.")
    size = rows[0].thumbnail_size
    n_layers = max(r.layer for r in rows) + 1
    n_heads = max(r.head for r in rows) + 1
    images = np.zeros((n_layers, n_heads, size, size), dtype=np.uint8)
    for r in rows:
        images[r.layer, r.head] = unpack_thumbnail(r.thumbnail, r.thumbnail_size)
    labels = cluster_labels(session, clustering_id, [r.id for r in rows]) if clustering_id is not None else {}
    cells = [
        HeadCell(
            id=r.id,
            name=r.head_ref.name,
            layer=r.layer,
            head=r.head,
            entropy=r.entropy,
            diagonal_mass=r.diagonal_mass,
            previous_token_mass=r.previous_token_mass,
            first_token_mass=r.first_token_mass,
            local_mass=r.local_mass,
            relational_scores={name: getattr(r, name) for name in RELATIONAL_SCORE_NAMES},
            reconstruction_error=r.reconstruction_error,
            error_percentile=error_percentile(errors, r.head_ref, r.reconstruction_error),
            cluster=clusters.get(r.head_ref.name) if clusters is not None else labels.get(r.id),
        )
        for r in rows
    ]
    return HeadGridPublic(
        inference_id=inference_id,
        n_layers=n_layers,
        n_heads=n_heads,
        thumbnail_size=size,
        thumbnails=base64.b64encode(images.tobytes()).decode("ascii"),
        heads=cells,
    )


def _pasted_error(grid: PastedGrid, i: int) -> float | None:
    return None if grid.reconstruction_errors is None else grid.reconstruction_errors[i]


def error_percentile(errors: ErrorDistributions | None, ref: HeadRef, error: float | None) -> float | None:
    """The error's percentile within the head's atlas errors, or None without either."""
    head = errors.get(ref) if errors is not None else None
    return None if head is None or error is None else head.percentile(float(error))


def pasted_head_grid(
    grid: PastedGrid, clusters: Mapping[str, int], errors: ErrorDistributions | None = None
) -> HeadGridPublic:
    """The head grid of a paste analysed without being stored, from what the worker sent (thumbnails and
    statistics in (layer, head) order), in the shape of a stored one (no pattern ids)."""

    def stat(name: str, i: int) -> float:
        return grid.stats[name][i]

    cells = []
    for i in range(grid.n_layers * grid.n_heads):
        ref = HeadRef(*divmod(i, grid.n_heads))
        cells.append(
            HeadCell(
                id=None, name=ref.name, layer=ref.layer, head=ref.head,
                entropy=stat("entropy", i), diagonal_mass=stat("diagonal_mass", i),
                previous_token_mass=stat("previous_token_mass", i),
                first_token_mass=stat("first_token_mass", i), local_mass=stat("local_mass", i),
                relational_scores={
                    name: None if (column := grid.relational.get(name)) is None else column[i]
                    for name in RELATIONAL_SCORE_NAMES
                },
                reconstruction_error=(error := _pasted_error(grid, i)),
                error_percentile=error_percentile(errors, ref, error),
                cluster=clusters.get(ref.name),
            )
        )  # fmt: skip
    return HeadGridPublic(
        inference_id=None,
        n_layers=grid.n_layers,
        n_heads=grid.n_heads,
        thumbnail_size=grid.thumbnail_size,
        thumbnails=grid.thumbnails,
        heads=cells,
    )
