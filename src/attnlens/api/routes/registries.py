"""The registries the pages and clients read instead of keeping copies: model families with their FIM
spelling, model presets, correctness-predictor kinds, and the corpora experiments may name."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel, Field

from attnlens.analysis.predictor_kinds import predictor_kind, predictor_kinds
from attnlens.api.deps import SettingsDep, StoreDep
from attnlens.api.routes.experiments import corpus_names
from attnlens.contracts.jobs import ATLAS_CORPUS, DEMO_CORPUS, HF_PREFIX, accepted_corpora
from attnlens.contracts.models import MODEL_FAMILIES, PRESETS, FimSpec
from attnlens.contracts.predictors import PredictorKindSpec

router = APIRouter(tags=["registries"])


class ModelFamilyPublic(BaseModel):
    name: str
    fim: FimSpec | None = Field(
        description="The family's FIM markers in prompt order; null: left-to-right only."
    )
    model_types: list[str]
    description: str


class ModelPresetPublic(BaseModel):
    name: str
    source: str = Field(description="`embedded`, `tiny` or a Hugging Face hub id.")
    family: str
    description: str


class ModelsPublic(BaseModel):
    families: list[ModelFamilyPublic]
    presets: list[ModelPresetPublic]


@router.get("/models", response_model=ModelsPublic)
def read_models() -> ModelsPublic:
    """Registered model families (with the FIM spelling each uses) and the model presets."""
    return ModelsPublic(
        families=[
            ModelFamilyPublic(
                name=f.name, fim=f.fim, model_types=list(f.model_types), description=f.description
            )
            for f in MODEL_FAMILIES.values()
        ],
        presets=[
            ModelPresetPublic(name=p.name, source=p.source, family=p.family, description=p.description)
            for p in PRESETS.values()
        ],
    )


@router.get("/predictors/kinds", response_model=list[PredictorKindSpec])
def read_predictor_kinds() -> list[PredictorKindSpec]:
    """The registered correctness-predictor kinds: name, the features each takes, what it is."""
    return [predictor_kind(name).spec for name in predictor_kinds()]


class CorpusPublic(BaseModel):
    name: str = Field(description="What to send as `corpus` (POST /api/experiments).")
    description: str = Field(description="What it is, by file or dataset name (never a server path).")
    available: bool = Field(description="False: registered, but its files are missing on the server.")
    default: bool = Field(description="The corpus an experiment uses when it names none.")


_FILE_KINDS = {".zip": "archive", ".jar": "archive", ".jsonl": "JSONL file"}
_ROLES = {DEMO_CORPUS: "the demo atlas's corpus", ATLAS_CORPUS: "the latest atlas build's corpus"}


def _describe(name: str, location: str) -> str:
    if location.startswith(HF_PREFIX):
        what = f"Hugging Face dataset {location.removeprefix(HF_PREFIX)}"
    else:
        # The last component only: enough to tell corpora apart, without the server's folder layout.
        path = Path(location)
        kind = _FILE_KINDS.get(path.suffix.lower(), "file" if path.suffix else "folder")
        what = f"{kind} {path.name}"
    return f"{_ROLES[name]} ({what})" if name in _ROLES else what


@router.get("/corpora", response_model=list[CorpusPublic])
def read_corpora(settings: SettingsDep, store: StoreDep) -> list[CorpusPublic]:
    """The corpus names experiments accept: `demo`, `atlas` once a build ran, and the configured ones
    (`hf:` datasets only where the server allows them)."""
    registered = corpus_names(settings, store)
    default = ATLAS_CORPUS if ATLAS_CORPUS in registered else DEMO_CORPUS
    return [
        CorpusPublic(
            name=name,
            description=_describe(name, location),
            available=location.startswith(HF_PREFIX) or Path(location).exists(),
            default=name == default,
        )
        for name, location in accepted_corpora(registered, allow_hf=settings.mining.allow_hf_datasets).items()
    ]
