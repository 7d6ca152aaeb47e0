"""The registries the pages and clients read instead of keeping copies: model families with their FIM
spelling, model presets, and correctness-predictor kinds."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from attnlens.analysis.predictor_kinds import predictor_kind, predictor_kinds
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
