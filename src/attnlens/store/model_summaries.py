"""Which models one atlas holds side by side (rows carry `model_name`), and how much of each: the model
switcher of the pages and GET /api/atlas/models read this."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from attnlens.store.models import MINED, HeadPattern, Inference


@dataclass(frozen=True)
class EmbedderCount:
    """How many of a model's mined inferences one AP-MAE checkpoint embedded (None: not recorded)."""

    embedder: str | None
    inferences: int


@dataclass(frozen=True)
class ModelSummary:
    """One model of the atlas: its mined inferences (pasted ones apart), its mined inferences' head
    patterns, its head grid as the stored patterns give it (None before it has any), and the embedders of
    its mined inferences, most used first."""

    name: str
    inferences: int
    pasted_inferences: int
    head_patterns: int
    n_layers: int | None
    n_heads: int | None
    embedders: tuple[EmbedderCount, ...]


def model_summaries(session: Session, include: Iterable[str] = ()) -> list[ModelSummary]:
    """Every model with mined inferences, and the models named in `include` even without any (the served
    one before its first build), sorted by name."""
    mined = Inference.source == MINED
    counts = session.execute(
        select(Inference.model_name, Inference.source, Inference.embedder, func.count()).group_by(
            Inference.model_name, Inference.source, Inference.embedder
        )
    ).all()
    # One pass over the patterns (the (inference, layer, head) index covers it): the mined ones counted,
    # the grid read from all, since a pasted inference's patterns have the same grid.
    patterns = session.execute(
        select(
            Inference.model_name,
            func.count(HeadPattern.id).filter(mined),
            func.max(HeadPattern.layer),
            func.max(HeadPattern.head),
        )
        .join(HeadPattern, HeadPattern.inference_id == Inference.id)
        .group_by(Inference.model_name)
    ).all()
    n_mined: dict[str, int] = defaultdict(int)
    n_pasted: dict[str, int] = defaultdict(int)
    embedders: dict[str, list[EmbedderCount]] = defaultdict(list)
    for name, source, embedder, n in counts:
        if source == MINED:
            n_mined[name] += int(n)
            embedders[name].append(EmbedderCount(embedder, int(n)))
        else:
            n_pasted[name] += int(n)
    grid = {name: (int(n), layer, head) for name, n, layer, head in patterns}
    names = sorted({name for name, n in n_mined.items() if n > 0} | set(include))
    out = []
    for name in names:
        n_patterns, top_layer, top_head = grid.get(name, (0, None, None))
        out.append(
            ModelSummary(
                name=name,
                inferences=n_mined.get(name, 0),
                pasted_inferences=n_pasted.get(name, 0),
                head_patterns=n_patterns,
                n_layers=None if top_layer is None else int(top_layer) + 1,
                n_heads=None if top_head is None else int(top_head) + 1,
                embedders=tuple(
                    sorted(embedders.get(name, []), key=lambda e: (-e.inferences, e.embedder or ""))
                ),
            )
        )
    return out
