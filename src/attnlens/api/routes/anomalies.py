"""The most unusual patterns: of the whole atlas, or of one inference (pasted ones included), judged by
AP-MAE's reconstruction error against each head's own errors over the atlas
(`attnlens.analysis.anomalies`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from attnlens.analysis.anomalies import TAIL, Anomaly, most_unusual
from attnlens.api.deps import InferenceDep, ModelQuery, SessionDep, SettingsDep, StoreDep
from attnlens.api.routes.heads import head_facts
from attnlens.api.routes.patterns import thumbnail_of
from attnlens.api.schemas_heads import AnomaliesPublic, AnomalyPublic
from attnlens.errors import NotFound
from attnlens.store import Store
from attnlens.store.analyses import cluster_labels, latest_clustering
from attnlens.store.inferences import inference_heads
from attnlens.store.models import MINED, HeadPattern
from attnlens.store.patterns import get_head_pattern

router = APIRouter(tags=["heads"])
Limit = Annotated[int, Query(ge=1, le=200, description="How many patterns.")]


def _public(
    session: Session, store: Store, model: str, found: list[tuple[HeadPattern, Anomaly]]
) -> list[AnomalyPublic]:
    clustering = latest_clustering(store, model)
    ids = [row.id for row, _ in found]
    labels = cluster_labels(session, clustering.id, ids) if clustering is not None else {}
    return [
        AnomalyPublic(
            **thumbnail_of(row, labels.get(row.id)).model_dump(), error=a.error, percentile=a.percentile,
            robust_z=a.robust_z, head_median=a.head_median,
        )
        for row, a in found
    ]  # fmt: skip


@router.get("/anomalies", response_model=AnomaliesPublic)
def read_anomalies(
    request: Request, store: StoreDep, session: SessionDep, settings: SettingsDep, limit: Limit = 24,
    model: ModelQuery = None,
) -> AnomaliesPublic:  # fmt: skip
    """The atlas's most unusual patterns: highest reconstruction error relative to their own head's errors
    (robust z), each with its percentile within the head. Empty before any pattern has an error."""
    name = model or settings.model.name
    facts = head_facts(request, store, name)
    found = []
    for anomaly in most_unusual(facts.error_table, facts.errors, limit):
        row = get_head_pattern(session, anomaly.pattern_id)
        if row is not None:  # deleted since the facts were read
            found.append((row, anomaly))
    return AnomaliesPublic(
        model=name, n_patterns=facts.errors.n_patterns, tail=TAIL, items=_public(session, store, name, found)
    )


@router.get("/inferences/{inference_id}/anomalies", response_model=AnomaliesPublic)
def read_inference_anomalies(
    inference: InferenceDep, request: Request, store: StoreDep, session: SessionDep, limit: Limit = 24
) -> AnomaliesPublic:
    """One inference's heads ranked by how unusual their pattern is for the head, and the share of its heads
    in their tail: an input the atlas has not seen puts many heads there at once."""
    facts = head_facts(request, store, inference.model_name)
    found: list[tuple[HeadPattern, Anomaly]] = []
    for row in inference_heads(session, inference.id):
        head = facts.errors.get(row.head_ref)
        if row.reconstruction_error is None or head is None:
            continue
        error = float(row.reconstruction_error)
        found.append(
            (row, Anomaly(row.id, inference.id, row.head_ref, error, head.percentile(error),
                          head.robust_z(error), head.median))
        )  # fmt: skip
    if not found and facts.errors.n_patterns == 0:
        raise NotFound(
            f"model {inference.model_name!r} has no atlas patterns with a reconstruction error yet; queue a "
            "head_scores job (attnlens heads backfill)."
        )
    share = facts.errors.unusual_share({row.head_ref: a.error for row, a in found})
    # A mined inference's patterns are part of the distributions they are judged against; a paste's are not.
    chance = facts.errors.chance_share([row.head_ref for row, _ in found], in_atlas=inference.source == MINED)
    found.sort(key=lambda item: -item[1].robust_z)
    return AnomaliesPublic(
        model=inference.model_name, n_patterns=facts.errors.n_patterns, tail=TAIL, unusual_share=share,
        chance_share=chance,
        items=_public(session, store, inference.model_name, found[:limit]),
    )  # fmt: skip
