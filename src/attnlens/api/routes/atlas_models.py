"""The models one atlas holds side by side (every row carries its model's name): for each, how much the atlas
has of it, its head grid, family and embedders. The pages' model switcher reads this; the endpoints that take
`?model=NAME` accept these names."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from attnlens.api.deps import SessionDep, SettingsDep, WorkerDep
from attnlens.api.schemas_models import AtlasModelPublic, EmbedderPublic
from attnlens.config import Settings
from attnlens.contracts.models import PRESETS
from attnlens.errors import ModelUnavailable, NotFound
from attnlens.service.protocol import WorkerClient
from attnlens.store.model_summaries import ModelSummary, model_summaries

router = APIRouter(tags=["atlas"])

ModelName = Annotated[
    str, Path(min_length=1, max_length=200, description="A model name from GET /api/atlas/models.")
]


def family_of(name: str, loaded: dict[str, Any] | None = None) -> str | None:
    """A model's family: the loaded model's (the worker detected it), else its preset's (by preset name or
    hub id), else None."""
    if loaded and loaded.get("family"):
        return str(loaded["family"])
    preset = PRESETS.get(name) or next((p for p in PRESETS.values() if p.hub_id == name), None)
    return preset.family if preset is not None else None


def _public(summary: ModelSummary, served: str, loaded: dict[str, Any] | None) -> AtlasModelPublic:
    mine = summary.name == served
    return AtlasModelPublic(
        name=summary.name, served=mine, family=family_of(summary.name, loaded if mine else None),
        inferences=summary.inferences, pasted_inferences=summary.pasted_inferences,
        head_patterns=summary.head_patterns, n_layers=summary.n_layers, n_heads=summary.n_heads,
        embedders=[EmbedderPublic(embedder=e.embedder, inferences=e.inferences) for e in summary.embedders],
    )  # fmt: skip


def _models(session: Session, settings: Settings, worker: WorkerClient) -> list[AtlasModelPublic]:
    served = settings.model.name
    try:
        loaded = worker.status().get("model")
    except ModelUnavailable:  # a remote worker that does not answer: the presets still name families
        loaded = None
    summaries = model_summaries(session, include=[served])
    # The served model first (the default of every `model`), then the others by name.
    summaries.sort(key=lambda s: (s.name != served, s.name))
    return [_public(s, served, loaded) for s in summaries]


@router.get("/atlas/models", response_model=list[AtlasModelPublic])
def read_atlas_models(
    session: SessionDep, settings: SettingsDep, worker: WorkerDep
) -> list[AtlasModelPublic]:
    """Every model with mined inferences in the atlas, the served one first (listed even before it has
    any): counts, head grid, family, embedders. Presets one could serve: GET /api/models."""
    return _models(session, settings, worker)


@router.get("/atlas/models/{model:path}", response_model=AtlasModelPublic)
def read_atlas_model(
    model: ModelName, session: SessionDep, settings: SettingsDep, worker: WorkerDep
) -> AtlasModelPublic:
    """One model of the atlas (a hub id's `/` may stand as it is); 404 for a model the atlas does not hold."""
    models = _models(session, settings, worker)
    found = next((m for m in models if m.name == model), None)
    if found is None:
        raise NotFound(
            f"the atlas holds no inferences of model {model!r}; its models: "
            f"{', '.join(m.name for m in models)} (GET /api/atlas/models)."
        )
    return found
