"""What the map and cluster endpoints return. The frontend reads exactly these shapes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from attnlens.api.schemas import PatternThumbnail


class ClusterLabelPublic(BaseModel):
    """A label a cluster carries, with its evidence."""

    label: str
    score: str
    median: float = Field(description="The score's median over the members it applies to.")
    threshold: float
    n_applicable: int


class MapPoints(BaseModel):
    """Column arrays of the shown points: entry i of every list describes point i."""

    x: list[float]
    y: list[float]
    id: list[int] = Field(description="Head pattern id (open it with GET /api/patterns/{id}).")
    layer: list[int]
    head: list[int]
    task: list[str | None]
    correct: list[bool | None] = Field(description="First-token correctness of the pattern's inference.")
    cluster: list[int | None] = Field(
        description="The pattern's cluster in its head (latest clustering; -1 noise, null if not clustered)."
    )
    inference: list[int] = Field(
        description="The inference (completion) the pattern was captured in (GET /api/inferences/{id})."
    )


class MapPublic(BaseModel):
    """The newest 2-D map of a model, downsampled (deterministically) when it has more than `max_points`."""

    map_id: int
    model: str
    total: int = Field(description="Points on the whole map.")
    shown: int = Field(description="Points in this answer.")
    clustering_id: int | None = Field(description="The clustering the `cluster` column comes from.")
    points: MapPoints


class ClusterPublic(BaseModel):
    """One cluster of one head (label -1 summarises the head's noise points)."""

    label: int
    size: int
    medoid_pattern_id: int | None = Field(description="The member nearest all others (none for noise).")
    tasks: dict[str, int] = Field(description="Task -> members of that task.")
    node_types: dict[str, int] = Field(description="Syntax node type of the hole -> members.")
    labels: list[ClusterLabelPublic] = Field(
        default_factory=list,
        description="Labels from the members' head-type scores (median over the members where the score "
        "applies, against its threshold; GET /api/heads/scores), strongest first. Hypotheses, not facts.",
    )
    examples: list[PatternThumbnail] = Field(
        default_factory=list, description="Typical members: the medoid, then the members nearest it."
    )
    correct: int = Field(0, description="Members whose inference had the right first token.")
    known: int = Field(0, description="Members whose inference has a ground truth.")
    correct_rate: float | None = Field(None, description="correct / known; null when known is 0.")
    correct_low: float | None = Field(None, description="95% Wilson interval, low end.")
    correct_high: float | None = Field(None, description="95% Wilson interval, high end.")
    head_correct_rate: float | None = Field(
        None, description="The baseline: the same rate over all of the head's clustered patterns."
    )
    head_correct_low: float | None = None
    head_correct_high: float | None = None
