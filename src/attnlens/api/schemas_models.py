"""What GET /api/atlas/models answers: the models one atlas holds side by side."""

from __future__ import annotations

from pydantic import BaseModel, Field


class EmbedderPublic(BaseModel):
    embedder: str | None = Field(
        description="The AP-MAE checkpoint that embedded these inferences' patterns (null: not recorded)."
    )
    inferences: int = Field(description="How many of the model's mined inferences it embedded.")


class AtlasModelPublic(BaseModel):
    """One model of the atlas: what pages show with `?model=NAME`."""

    name: str = Field(description="What to send as `model` to the endpoints that take one.")
    served: bool = Field(description="The model the worker holds (the default of every `model`).")
    family: str | None = Field(
        description="Its model family (GET /api/models), from its preset or the loaded model; null: unknown."
    )
    inferences: int = Field(description="Mined completions (the atlas's own).")
    pasted_inferences: int = Field(description="Pasted completions stored besides, counted apart.")
    head_patterns: int = Field(description="Head patterns of the mined completions.")
    n_layers: int | None = Field(description="Layers, from the stored patterns (null: none stored yet).")
    n_heads: int | None = Field(description="Heads per layer, from the stored patterns.")
    embedders: list[EmbedderPublic] = Field(description="The embedders of its mined inferences, most first.")
