"""Response shapes of related heads across models: the head x head distance matrix of two models and one
head's nearest heads in the other models."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HeadLabelsPublic(BaseModel):
    name: str
    layer: int
    head: int
    labels: list[str] = Field(description="Its computed labels in its own model, strongest first.")


class IntervalPublic(BaseModel):
    estimate: float
    low: float | None = Field(description="95% interval; null when too few heads to resample.")
    high: float | None
    method: str


class LabelAgreementPublic(BaseModel):
    """Whether heads carrying one label in both models are nearer each other than random pairs."""

    score: str = Field(description="The score whose label is compared (GET /api/heads/scores).")
    label: str
    heads_a: int = Field(description="Heads of the first model with the label.")
    heads_b: int = Field(description="Heads of the second model with the label.")
    mean_same: float | None = Field(description="Mean distance over same-label pairs; null when none.")
    mean_all: float = Field(description="Mean distance over every pair of heads: the random-pair baseline.")
    auc: IntervalPublic | None = Field(
        description="P(a same-label pair is nearer than a random pair); 0.5 is chance. Null: no such pair."
    )
    row_auc: IntervalPublic | None = Field(
        description="P(a same-label pair is nearer than the same head with a random partner): each head "
        "against its own partners. Null: no such pair."
    )
    nearest_hits: int = Field(description="Labelled heads of the first model whose nearest head is labelled.")
    chance: float = Field(description="Share of the second model's heads with the label: a random hit rate.")


class CrossModelPublic(BaseModel):
    """Distances between every head of `model` (rows) and of `other` (columns) in one AP-MAE space."""

    model: str
    other: str
    embedder: str | None = Field(description="The AP-MAE checkpoint both models' patterns are embedded with.")
    method: str = Field(description="How the distance is computed, in words.")
    tasks: list[str] = Field(description="Tasks both models have patterns of; distances average over them.")
    min_patterns: int
    rows: list[HeadLabelsPublic] = Field(description="The heads of `model`, in row order, with labels.")
    columns: list[HeadLabelsPublic] = Field(description="The heads of `other`, in column order.")
    distances: list[list[float | None]] = Field(
        description="distances[i][j] between rows[i] and columns[j]; null when they share no task."
    )
    agreement: list[LabelAgreementPublic] = Field(
        description="Validation: same-label pairs against random pairs, per label."
    )


class AcrossHeadPublic(BaseModel):
    name: str
    layer: int
    head: int
    distance: float = Field(description="Distance between the heads' embedding distributions (0 = same).")
    labels: list[str] = Field(description="Its computed labels in its own model, strongest first.")


class RelatedAcrossPublic(BaseModel):
    """One other model's heads nearest to the asked head."""

    model: str
    embedder: str | None
    typical_distance: float | None = Field(
        description="The median distance over every pair of heads, for scale; null when no pair shares a "
        "task with enough patterns (then `heads` is empty)."
    )
    min_patterns: int = Field(description="Patterns a head needs of a task for the task to count.")
    heads: list[AcrossHeadPublic]
