"""What the API returns (`<Thing>Public`). The frontend reads exactly these shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from attnlens.contracts.jobs import BALANCED_CANDIDATE_FACTOR, BALANCED_MIN_PER_CLASS
from attnlens.contracts.results import DiffOp, HeadContribution, Prediction

# Ceilings in the schema, so that no string or list is unbounded whatever the settings say; the settings
# (api.max_code_bytes, api.max_ablate_heads, api.max_body_bytes) set the limits in force beneath them.
MAX_MATRIX_SIDE = 4096
MAX_HEADS_IN_SCHEMA = 65_536
MAX_CODE_CHARS = 1_048_576
HeadName = Annotated[str, Field(max_length=16, description="`L{layer}H{head}`, e.g. L3H5.")]
TaskName = Annotated[str, Field(max_length=64)]


class InferenceSummary(BaseModel):
    """One completion in a list."""

    id: int
    model_name: str
    source: Literal["mined", "pasted"] = Field(
        description="`mined`: part of the atlas (its analyses and counts); `pasted`: pasted code, kept out "
        "of every analysis and deletable."
    )
    task: str | None = Field(
        description="Mining task (for pasted code: the task asked for, `selection` for a selected span)."
    )
    file_path: str | None
    target_text: str | None = Field(description="The ground truth at the hole, when there is one.")
    completion_text: str
    first_token_correct: bool | None
    span_correct: bool | None
    expected_token_prob: float | None
    top1_prob: float | None = Field(
        None, description="The model's probability of its own first token at the hole (null: built before)."
    )
    top1_margin: float | None = Field(None, description="Top-1 minus top-2 probability at the hole.")
    next_token_entropy: float | None = Field(
        None, description="Entropy of the next-token distribution, nats."
    )


class InferencePage(BaseModel):
    """A page of inferences and how many match in total."""

    total: int
    limit: int
    offset: int
    items: list[InferenceSummary]


class InferencePublic(InferenceSummary):
    """One completion with its tokens."""

    mode: str | None = Field(description="`fim` (fill-in-the-middle) or `l2r` (left-to-right).")
    node_type: str | None
    hole_start: int | None = Field(description="Byte offset of the hole in the source file.")
    hole_end: int | None
    prompt_tokens: list[str] = Field(description="The model's input, one string per token.")
    prefix_text: str = Field(
        description="The file's text before the hole in the prompt (decoded as a whole, so characters split "
        "over byte-level tokens read right; FIM markers left out)."
    )
    suffix_text: str = Field(description="The file's text after the hole in the prompt (empty for l2r).")
    target_tokens: list[str]
    completion_tokens: list[str]
    n_prefix_tokens: int | None
    embedder: str | None
    head_scores_computed: bool = Field(
        description="Whether its head patterns' relational scores were computed (false for rows built "
        "before they existed, until the `head-scores` backfill job runs)."
    )
    created_at: datetime


class HeadCell(BaseModel):
    """One head of one inference in the grid."""

    id: int | None = Field(description="Head pattern id (also its FAISS id); null for an unstored paste.")
    name: str = Field(description="`L{layer}H{head}`.")
    layer: int
    head: int
    entropy: float
    diagonal_mass: float
    previous_token_mass: float
    first_token_mass: float
    local_mass: float
    reconstruction_error: float | None = Field(
        None, description="AP-MAE's masked-patch MSE on this pattern (null: not measured)."
    )
    error_percentile: float | None = Field(
        None,
        description="Share of this head's atlas patterns whose error is at most this one's (1 = the most "
        "unusual); null without an error or an atlas distribution.",
    )
    relational_scores: dict[str, float | None] = Field(
        default_factory=dict,
        description="The relational head-type scores (GET /api/heads/scores says what each measures); null "
        "where the input has no such token pairs, or where they were not computed yet (the inference's "
        "`head_scores_computed` is false).",
    )
    cluster: int | None = Field(
        None,
        description="The head's cluster label (-1: noise) in the newest clustering of the model, or the "
        "cluster a pasted pattern joins by kNN vote; null when no clustering covers it.",
    )


class HeadGridPublic(BaseModel):
    """Every head of one inference. `thumbnails` packs all images in one string: base64 of
    n_layers * n_heads * size * size uint8 values, heads in (layer, head) order, rows top to bottom."""

    inference_id: int | None = Field(description="Null for a paste analysed without being stored.")
    n_layers: int
    n_heads: int
    thumbnail_size: int
    thumbnails: str
    heads: list[HeadCell]


class JobPublic(BaseModel):
    """A long task and how far it got."""

    id: int
    kind: str
    state: str
    parameters: dict[str, Any]
    progress_done: int
    progress_total: int | None
    message: str
    error: str | None
    result: dict[str, Any] | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    eta_seconds: float | None = Field(
        description="Estimated seconds left of a running job (see `eta_basis`); null when nothing to go on."
    )
    eta_basis: str | None = Field(
        None,
        description="What the ETA rests on: the pace of the recent finished jobs of the kind (per unit of "
        "progress), or this job's own pace so far when none finished yet.",
    )
    queue_place: int | None = Field(
        None, description="While queued: its place in the queue (1 = the worker takes it next)."
    )


class PatternPublic(BaseModel):
    """One head's full attention pattern on its inference, with the tokens on both axes."""

    id: int
    name: str
    layer: int
    head: int
    inference_id: int
    task: str | None
    tokens: list[str] = Field(description="Token strings; row i is query token i, column j key token j.")
    values: list[list[float]] = Field(description="Attention weights, rows = queries, columns = keys.")
    stats: dict[str, float | None] = Field(
        description="Every head-type score of this pattern (GET /api/heads/scores); null where it does not "
        "apply to the input or was not computed yet."
    )
    hole_query: int = Field(
        description="The query row that predicts the hole's first token: the prompt's last token."
    )
    hole_key: int = Field(
        description="The last key token before the hole in the source: the end of the prefix in a FIM prompt "
        "(the hole sits between it and the suffix marker), the last token left-to-right."
    )


class PatternThumbnail(BaseModel):
    """One stored head pattern as the atlas keeps it: its stored thumbnail and what it belongs to (read from
    the database; no model call)."""

    id: int
    name: str
    layer: int
    head: int
    inference_id: int
    task: str | None
    target_text: str | None
    first_token_correct: bool | None
    cluster: int | None = Field(
        None, description="Its cluster (-1: noise) in the newest clustering of its model; null if none."
    )
    thumbnail_size: int
    thumbnail: str = Field(description="base64 of size*size uint8, rows top to bottom.")


class NeighborHit(PatternThumbnail):
    """One nearby pattern in the atlas."""

    score: float = Field(description="Cosine similarity of the AP-MAE embeddings (1 = identical direction).")


class NeighborsPublic(BaseModel):
    """Nearest patterns to a query pattern."""

    query_id: int | None
    hits: list[NeighborHit]


class PatternSearch(BaseModel):
    """Search the atlas with a pattern of your own (a causal attention matrix, rows summing to 1)."""

    values: list[Annotated[list[float], Field(max_length=MAX_MATRIX_SIDE)]] = Field(
        max_length=MAX_MATRIX_SIDE,
        description="Square attention matrix, the size the AP-MAE takes (e.g. 256).",
    )
    k: int = Field(12, ge=1, le=200)

    @field_validator("values")
    @classmethod
    def _square(cls, values: list[list[float]]) -> list[list[float]]:
        if not values or any(len(row) != len(values) for row in values):
            raise ValueError("values must be a non-empty square matrix (n rows of n numbers)")
        return values

    layer: int | None = Field(None, ge=0, le=4096)
    head: int | None = Field(None, ge=0, le=4096)
    task: str | None = Field(None, max_length=64)
    first_token_correct: bool | None = None


class AblationRequest(BaseModel):
    """Heads to zero-ablate (named `L{layer}H{head}`) and how much to generate."""

    heads: list[HeadName] = Field(
        max_length=MAX_HEADS_IN_SCHEMA,
        description="Heads to ablate; an empty list reproduces the baseline exactly. At most "
        "api.max_ablate_heads (2,048 by default); the schema's ceiling is the largest any setting may allow.",
    )
    max_new_tokens: int | None = Field(None, ge=1, description="Default: the target's length, at least 8.")


class AblationPublic(BaseModel):
    """Baseline vs ablated completion of one inference's prompt."""

    inference_id: int
    heads: list[str]
    baseline_text: str
    ablated_text: str
    changed: bool
    diff: list[DiffOp]
    kl_at_hole: float = Field(
        description="KL(baseline || ablated) of the next-token distribution at the hole, nats."
    )
    expected_token: str | None
    p_expected_baseline: float | None
    p_expected_ablated: float | None
    delta_p_expected: float | None


class HoleSpec(BaseModel):
    """Where to complete: a selection [start, end), or a cursor and a task.
    Offsets count Unicode code points."""

    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)
    cursor: int | None = Field(None, ge=0)
    task: str | None = Field(None, max_length=64)


class AnalyzeRequest(BaseModel):
    """Pasted Java and where to complete it; with no hole, one target per task in `tasks` is picked."""

    code: str = Field(
        max_length=MAX_CODE_CHARS,
        description="Java source: a class, a method or statements; at most api.max_code_bytes bytes as UTF-8 "
        "(64 KiB by default).",
    )
    hole: HoleSpec | None = None
    tasks: list[TaskName] | None = Field(
        None, max_length=4, description="Tasks for automatic holes (default: identifiers)."
    )
    store: bool = Field(
        True,
        description="Keep the paste as a `pasted` inference (shareable by id, deletable, never part of an "
        "analysis); false: analyse it without writing anything (no inference id; the grid comes inline).",
    )


class PredictorSummary(BaseModel):
    """A stored correctness predictor and its cross-validated quality."""

    id: int
    name: str
    kind: str = Field(description="A registered predictor kind (GET /api/predictors/kinds).")
    task: str | None
    accuracy: float
    accuracy_low: float = Field(description="Wilson 95% interval, lower end.")
    accuracy_high: float
    chance: float | None = Field(description="Majority-class rate of the task's rows.")
    brier: float | None
    calibration_error: float | None
    n_rows: int
    folds: int
    created_at: datetime


class TaskPublic(BaseModel):
    """A mining task, what it can be used for, and how many completions of it the atlas holds."""

    name: str
    description: str
    at_cursor: bool = Field(
        description="Pasted code: the next target of this task after a cursor can be the hole."
    )
    auto_holes: bool = Field(description="Pasted code: the app can pick a hole of this task itself.")
    control: bool = Field(
        description="A control whose correctness is meaningless (its predictor must sit at chance)."
    )
    inferences: int = Field(description="Mined completions of this task for the model (the atlas's).")
    first_token_correct: int = Field(description="Of those, how many had the right first token.")
    first_token_accuracy_low: float | None = Field(
        None, description="Wilson 95% interval of first_token_correct / inferences, lower end (null: none)."
    )
    first_token_accuracy_high: float | None = Field(None, description="The interval's upper end.")
    pasted: int = Field(0, description="Stored pasted completions of this task, counted apart.")


class AnalyzedHole(BaseModel):
    inference_id: int | None = Field(
        description="The stored pasted inference; null when the paste was analysed with `store: false`."
    )
    task: str | None
    target_text: str
    completion_text: str
    first_token_correct: bool
    span_correct: bool
    expected_token_prob: float


class AnalyzePublic(AnalyzedHole):
    """The first hole in full (with its head grid); further holes in `others`."""

    prediction: Prediction | None = Field(
        description="P(correct) from the task's best predictor, with that predictor's measured accuracy and "
        "the heads that drive it (signed SHAP, log-odds of correct)."
    )
    prediction_unavailable: str | None = Field(
        None, description="Why there is no prediction, when there is none."
    )
    predicted_with_task: str | None = Field(
        None,
        description="Whose task's predictor was used (a selection that is no task's target uses `random`).",
    )
    clustering_id: int | None = Field(
        None, description="The clustering the heads were placed in by kNN vote."
    )
    top_heads: list[HeadContribution] = Field(description="The prediction's top heads (empty without one).")
    grid: HeadGridPublic
    unusual_share: float | None = Field(
        None,
        description="The share of this input's heads whose pattern is in the tail of the head's own atlas "
        "reconstruction errors (above the `unusual_tail` percentile; about 1 - unusual_tail by chance): high "
        "for an input unlike the atlas's. Null before the atlas has errors.",
    )
    unusual_tail: float = Field(description="The percentile that bounds a head's tail.")
    unusual_chance: float | None = Field(
        None,
        description="The share of heads expected in their tail by chance alone for an input like the "
        "atlas's, given its number of patterns per head (about 1 - unusual_tail on a large atlas).",
    )
    others: list[AnalyzedHole]


class DeletedPublic(BaseModel):
    """What a delete removed."""

    inference_id: int
    head_patterns: int = Field(description="Head patterns deleted with it (and dropped from the index).")


class ExperimentRequest(BaseModel):
    """A population ablation experiment: ablate n heads chosen by each rule over held-out scenarios
    of a task."""

    task: str = Field(max_length=64, description="Mining task of the held-out scenarios, e.g. identifiers.")
    rules: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=lambda: ["top_positive", "top_negative", "neutral", "random"],
        max_length=4,
        description="top_positive (alias pos), top_negative (neg), neutral, random.",
    )
    n: list[int] = Field(
        default_factory=lambda: [1, 2, 5, 10, 20, 50], max_length=20, description="Head counts."
    )
    scenarios: int = Field(60, ge=2, le=5000, description="Held-out scenarios to mine and test.")
    corpus: str | None = Field(
        None,
        max_length=1000,
        description="A corpus name from GET /api/corpora (or a path under the server's corpus root, where "
        "one is configured). Default: `atlas`, the latest atlas build's corpus, else `demo`.",
    )
    seed: int = Field(0, ge=0, le=2**31)
    balanced: bool = Field(
        False,
        strict=True,
        description="Hold as many scenarios the unablated model gets right as it gets wrong (scenarios // 2 "
        f"of each, so at least {2 * BALANCED_MIN_PER_CLASS} scenarios): up to {BALANCED_CANDIDATE_FACTOR} "
        "times as many candidates are mined and their baseline measured, and the first of each class in "
        "mining order are kept. If the corpus has too few of the rarer class, as many of each as it has are "
        f"kept (the result says so); fewer than {BALANCED_MIN_PER_CLASS} of either fails the job. A full "
        "balanced set's baseline accuracy is 0.5.",
    )
