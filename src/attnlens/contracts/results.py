"""The frozen results that cross the worker boundary (in process, or as JSON between the API and a
worker service): an ablation's outcome, a pasted hole's analysis with its prediction. The API's response
schemas nest these, so the server, the wire and the pages cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DiffTag = Literal["equal", "replace", "delete", "insert"]


@dataclass(frozen=True)
class DiffOp:
    """One run of a token-level diff between the baseline and the ablated completion: `delete` runs are
    only in the baseline, `insert` runs only in the ablated completion."""

    op: DiffTag
    baseline: list[str]
    ablated: list[str]


@dataclass(frozen=True)
class AblationOutcome:
    """Baseline vs ablated greedy completion of one prompt."""

    heads: list[str]
    baseline_text: str
    ablated_text: str
    baseline_ids: list[int]
    ablated_ids: list[int]
    diff: list[DiffOp]
    kl_at_hole: float  # KL(baseline || ablated) of the next-token distribution at the hole, in nats
    changed: bool
    expected_token_id: int | None = None
    p_expected_baseline: float | None = None
    p_expected_ablated: float | None = None

    @property
    def delta_p_expected(self) -> float | None:
        if self.p_expected_baseline is None or self.p_expected_ablated is None:
            return None
        return self.p_expected_ablated - self.p_expected_baseline


@dataclass(frozen=True)
class PredictorInfo:
    """Which stored predictor answered, and how good it measured (cross-validated, 95% Wilson interval)."""

    id: int  # GET /api/predictors/{id} shows the evidence behind the accuracy
    name: str
    kind: str
    task: str | None
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    chance: float | None  # majority-class rate of its training rows


@dataclass(frozen=True)
class HeadContribution:
    """A head that drives a prediction: its signed SHAP value in log-odds of "correct", and the cluster
    its pattern joined (-1: noise; None when no clustering covers the head)."""

    name: str
    importance: float
    cluster: int | None = None


@dataclass(frozen=True)
class Prediction:
    """P(correct) of a completion from its heads' patterns, before and independent of the truth.

    `applies` says whether the predictor's measured accuracy applies to this input: the input is like the
    rows it was measured on (the same window length, the same model and AP-MAE checkpoint, and, for a
    cluster-id predictor, kNN-voted cluster ids that agree with the clustering's labels); `applicability`
    says why, in words. The probability is what the model says either way."""

    probability_correct: float
    predictor: PredictorInfo
    top_heads: list[HeadContribution]
    applies: bool
    applicability: str
    prompt_tokens: int  # the input's prompt length in tokens (0: the caller did not say)


@dataclass(frozen=True)
class HoleRequest:
    """Where to complete pasted code: a selection [start, end), or a cursor and a task. Offsets count
    Unicode code points of the code (Python string indices)."""

    start: int | None = None
    end: int | None = None
    cursor: int | None = None
    task: str | None = None


@dataclass(frozen=True)
class PastedGrid:
    """The head grid of a paste that was not stored (no rows to build it from): every head's thumbnail and
    statistics, heads in (layer, head) order, as the stored rows would give them."""

    n_layers: int
    n_heads: int
    thumbnail_size: int
    thumbnails: str  # base64 of n_layers * n_heads * size * size uint8 values, rows top to bottom
    stats: dict[str, list[float]]  # statistic name (entropy, diagonal_mass, ...) -> one value per head
    # Relational score name -> one value per head, or None where the input has no such token pairs.
    relational: dict[str, list[float] | None] = field(default_factory=dict)
    reconstruction_errors: list[float] | None = None  # one per head (AP-MAE's masked-patch MSE)


@dataclass(frozen=True)
class PastedHole:
    """One hole of pasted code: the completion, its correctness, and what the atlas predicts of it. A
    stored paste has an `inference_id` (its grid is read from the stored rows); an unstored one has none
    and carries its `grid`."""

    inference_id: int | None  # None: analysed without being stored
    task: str | None  # None for a selected span
    target_text: str
    completion_text: str
    first_token_correct: bool
    span_correct: bool
    expected_token_prob: float
    predicted_with_task: str | None  # whose task's predictor was asked
    prediction: Prediction | None
    prediction_unavailable: str | None  # why there is no prediction, when there is none
    clustering_id: int | None = None  # the clustering the heads were placed in by kNN vote
    clusters: dict[str, int] = field(default_factory=dict)  # head name -> cluster label (-1: noise)
    grid: PastedGrid | None = None  # set when the paste was not stored


@dataclass(frozen=True)
class SweepRow:
    """What ablating one head (or one whole layer: `head` None) changed at the hole."""

    target: str  # "L3H5", or "L3" for the whole layer
    layer: int
    head: int | None
    p_expected: float | None  # None when the inference has no expected token (pasted without a target)
    delta_p_expected: float | None  # p_expected - the un-ablated p_expected
    kl: float  # KL(un-ablated || ablated) of the next-token distribution, nats
    top_token_id: int  # the greedy first token with the ablation
    top_token: str
    flipped: bool  # the greedy first token differs from the un-ablated one


@dataclass(frozen=True)
class PreviewedHole:
    """A hole a run would complete. [start, end) is the hole (token-aligned when the preview had the
    model's tokens) and `expected_text` its text as the run reports it (`target_text`); [target_start,
    target_end) is the selection or the task's target before the widening. Offsets are code points."""

    task: str | None
    node_type: str
    start: int
    end: int
    expected_text: str
    target_start: int
    target_end: int


@dataclass(frozen=True)
class HolePreview:
    """The holes a paste request would get, found without running the model. `aligned`: widened to the
    served model's tokens as the run widens them (False while the model loads; `note` says why)."""

    holes: list[PreviewedHole]
    aligned: bool
    note: str | None = None
