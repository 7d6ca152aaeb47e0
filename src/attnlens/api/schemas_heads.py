"""What the head endpoints answer: the head-type scores, head profiles with their labels, and examples."""

from __future__ import annotations

from pydantic import BaseModel, Field

from attnlens.api.schemas import PatternThumbnail


class HeadScoreSpec(BaseModel):
    """One head-type score: what it measures and when it labels a head."""

    name: str = Field(description="The score's key in every payload (and its database column).")
    label: str = Field(description="What a head is called when its median reaches `threshold`.")
    title: str
    formula: str = Field(description="The quantity averaged over the query rows the score applies to.")
    threshold: float = Field(
        description="A head carries `label` when its median over the atlas is at least this."
    )
    relational: bool = Field(
        description="True: applies only to inputs that have such token pairs (repeated tokens, brackets, "
        "declarations ...), and is null on the others; false: applies to every pattern."
    )


class ScoreProfilePublic(BaseModel):
    """One score over one head's patterns."""

    name: str
    n_applicable: int = Field(description="The head's patterns whose input the score applies to.")
    median: float | None = Field(description="Null when the score applied to none of them.")
    deciles: list[float] | None = Field(description="10th, 20th ... 90th percentile.")
    typical: float | None = Field(
        description="The baseline: the median over all heads of the model of each head's median."
    )
    labelled: bool = Field(description="Whether the median reaches the score's threshold.")


class HeadLabelPublic(BaseModel):
    """A label a head carries, with its evidence. A hypothesis from these inputs, not a fact."""

    label: str
    score: str = Field(description="The score behind the label.")
    median: float
    threshold: float
    typical: float | None = Field(description="The median head's median for this score (the baseline).")
    n_applicable: int


class HeadSummaryPublic(BaseModel):
    """One head in the heads overview (the scatter's point)."""

    name: str
    layer: int
    head: int
    n_patterns: int
    medians: dict[str, float | None] = Field(description="Score name -> median (null: never applied).")
    labels: list[str] = Field(description="Labels carried, strongest first (median / threshold).")
    importance: float | None = Field(
        None,
        description="Predictive importance: the head's largest mean |SHAP| over the tasks whose most "
        "accurate head-ranking predictor lies above chance (GET /api/predictors/heads); null without one.",
    )
    importance_task: str | None = Field(None, description="The task that largest importance comes from.")


class HeadsOverviewPublic(BaseModel):
    """Every head of one model with its medians and labels, over the atlas's scored mined inferences."""

    model: str
    n_layers: int
    n_heads: int
    n_inferences: int = Field(description="Mined inferences whose patterns the profiles are computed from.")
    n_inferences_unscored: int = Field(
        description="Mined inferences left out because their relational scores were not computed yet "
        "(queue a `head_scores` job to compute them)."
    )
    typical: dict[str, float | None] = Field(description="Per score, the median over heads of the medians.")
    heads: list[HeadSummaryPublic]


class HeadProfilePublic(BaseModel):
    """One head's profile: every score's distribution over the atlas, and the labels they support."""

    model: str
    name: str
    layer: int
    head: int
    n_patterns: int
    n_inferences: int
    n_inferences_unscored: int
    scores: list[ScoreProfilePublic]
    labels: list[HeadLabelPublic]
    caveat: str = Field(description="What a label is and is not.")


class HeadExamplePublic(PatternThumbnail):
    """A pattern of the head whose score lies in the chosen decile."""

    value: float = Field(description="The pattern's value of the chosen score.")


class HeadExamplesPublic(BaseModel):
    name: str
    score: str
    decile: int
    low: float | None = Field(description="The decile's lower bound (null for the first: none).")
    high: float | None = Field(description="The decile's upper bound (null for the tenth: none).")
    n_in_decile: int
    examples: list[HeadExamplePublic]


class AnomalyPublic(PatternThumbnail):
    """A pattern and how unusual it is for its head (AP-MAE reconstruction error against the head's own
    errors over the atlas)."""

    error: float = Field(
        description="AP-MAE's masked-patch MSE with the fixed mask (higher = less familiar)."
    )
    percentile: float = Field(
        description="Share of the head's atlas patterns whose error is at most this one's (1 = the worst)."
    )
    robust_z: float = Field(description="(error - the head's median) / (1.4826 x the head's MAD).")
    head_median: float = Field(description="The head's median error over the atlas.")


class AnomaliesPublic(BaseModel):
    """The most unusual patterns, of the atlas or of one inference, highest robust z first."""

    model: str
    n_patterns: int = Field(description="Atlas patterns with an error, which the head distributions hold.")
    tail: float = Field(description="The percentile above which a pattern counts as in its head's tail.")
    unusual_share: float | None = Field(
        None,
        description="One inference only: the share of its heads in their tail (about 1 - tail by chance); "
        "null for the atlas list or when no head has a distribution.",
    )
    chance_share: float | None = Field(
        None,
        description="One inference only: the share of its heads expected in their tail by chance alone, "
        "for the atlas's number of patterns per head (about 1 - tail on a large atlas).",
    )
    items: list[AnomalyPublic]


class RelatedHeadPublic(BaseModel):
    """A head whose patterns point the same way in AP-MAE's space."""

    name: str
    layer: int
    head: int
    similarity: float = Field(description="Cosine of the two heads' mean unit AP-MAE embeddings (1 = same).")
    labels: list[str] = Field(description="Its computed labels, strongest first.")
