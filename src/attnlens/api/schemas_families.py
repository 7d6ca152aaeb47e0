"""What the pattern-family endpoints answer: the newest family run of a model, its families with their
labels and evidence, where each occurs, the correctness of its completions beside the atlas's, and example
patterns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from attnlens.api.schemas import JobPublic, PatternThumbnail


class CompletionRatePublic(BaseModel):
    """A first-token correctness rate over distinct completions, with its Wilson 95% interval."""

    successes: int = Field(description="Completions whose first generated token was right.")
    trials: int = Field(
        description="Distinct completions counted, each ONCE however many of its heads' patterns are "
        "members; completions without a ground truth and of control tasks (noise) are left out."
    )
    rate: float
    low: float = Field(description="Lower end of the Wilson 95% interval.")
    high: float = Field(description="Upper end of the Wilson 95% interval.")


class FamilyLabelPublic(BaseModel):
    """A label a family carries, with its evidence: the median of the score over the members it applies
    to reached the score's threshold (the rule heads follow). A hypothesis, not a fact."""

    label: str = Field(description="The score's label, e.g. previous-token.")
    score: str = Field(description="The score's name (GET /api/heads/scores).")
    median: float
    threshold: float
    n_applicable: int = Field(description="Members the score applies to (the median's rows).")


class FamilyScorePublic(BaseModel):
    """One head-type score over a family's members."""

    name: str
    n_applicable: int = Field(description="Members whose input the score applies to (scores computed).")
    median: float | None = Field(description="Null when the score applied to none of them.")
    deciles: list[float] | None = Field(description="10th, 20th ... 90th percentile.")
    labelled: bool = Field(description="Whether the median reaches the score's threshold.")


class LayerCountPublic(BaseModel):
    layer: int
    count: int = Field(description="Members of the family in this layer.")


class HeadCountPublic(BaseModel):
    name: str = Field(description="A head, L{layer}H{head}.")
    count: int = Field(description="Members of the family from this head.")


class FamilyPublic(BaseModel):
    """One pattern family: a cluster of the one global clustering of every head's patterns."""

    label: int = Field(description="The family's number in its run: 0 is the largest.")
    size: int = Field(description="Patterns in the family (fitted and assigned by the kNN vote).")
    share: float = Field(description="Its size over every pattern of the run (noise included).")
    n_fitted: int = Field(description="Members from the fit sample (their family comes from HDBSCAN).")
    medoid_pattern_id: int | None = Field(description="The member with the least distance to the others.")
    example_ids: list[int] = Field(description="The medoid, then the members nearest it: typical members.")
    labels: list[FamilyLabelPublic] = Field(description="The labels it carries, strongest first.")
    scores: list[FamilyScorePublic] = Field(description="Every head-type score over its members.")
    n_scored: int = Field(description="Members whose completion has its head-type scores computed.")
    layers: list[LayerCountPublic] = Field(description="Members per layer, by layer (layers without none).")
    heads: list[HeadCountPublic] = Field(description="The heads with the most members, most first.")
    n_heads: int = Field(description="Distinct heads with at least one member.")
    tasks: dict[str, int] = Field(description="Members per task, most first.")
    n_inferences: int = Field(description="Distinct completions with at least one member.")
    correctness: CompletionRatePublic | None = Field(
        description="First-token correctness of its members' completions (each once); null: none counted."
    )
    differs_from_atlas: bool | None = Field(
        description="The atlas's rate lies outside this family's 95% interval; null: nothing to compare."
    )
    examples: list[PatternThumbnail] = Field(
        [], description="Stored thumbnails of the first example patterns (as many as asked for)."
    )


class FamilyRunPublic(BaseModel):
    """One run of the `pattern_families` job (the newest finished one is served)."""

    id: int
    created_at: datetime
    job_id: int | None
    embedder: str | None = Field(description="The AP-MAE checkpoint whose embeddings were clustered.")
    parameters: dict[str, Any] = Field(description="The settings it ran with (ATTNLENS_ANALYSIS__*).")
    n_patterns: int = Field(description="Patterns of the model's mined atlas it assigned (noise included).")
    n_fitted: int = Field(description="Patterns UMAP + HDBSCAN were fitted on; the rest joined by kNN vote.")
    n_noise: int = Field(description="Patterns in no family (label -1).")
    n_families: int
    n_scored_patterns: int = Field(description="Patterns whose completion has head-type scores computed.")
    reason: str | None = Field(description="Why no family was found, when none was.")


class FamiliesPublic(BaseModel):
    """The newest pattern families of a model, or why there are none yet."""

    model: str
    run: FamilyRunPublic | None = Field(description="Null: no finished run of the model yet.")
    reason: str | None = Field(description="Why `families` is empty, and how to make some.")
    atlas_correctness: CompletionRatePublic | None = Field(
        description="The baseline: the same rate over every completion of the run's atlas, each once."
    )
    correctness_leaves_out_tasks: list[str] = Field(
        description="Control tasks whose completions no correctness rate counts (their targets are random)."
    )
    families: list[FamilyPublic]
    job: JobPublic | None = Field(
        description="The newest pattern_families job of this model still queued or running; else, when no "
        "run exists, the newest one (so that a failure's reason is shown)."
    )


class FamilyDetailPublic(BaseModel):
    """One family in full, with the run it belongs to and the atlas's baseline."""

    model: str
    run: FamilyRunPublic
    atlas_correctness: CompletionRatePublic | None
    correctness_leaves_out_tasks: list[str]
    family: FamilyPublic
