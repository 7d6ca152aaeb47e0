"""The findings report: the paper's five claims measured on an atlas (`attnlens report`, the Findings page).

Each section holds what was measured, or a `reason` saying why nothing was (never a number that does not
apply), beside the paper's statement (`PAPER_CLAIMS`, from the abstract: the paper's tables are not public).
The report job returns `asdict(Findings)`; the API validates it back into these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FINDINGS_REPORT = "findings_report"

# The abstract's statements (TMLR 2026; ../shared/reference/paper-method.md section 1): what each section
# is set beside. Nothing more specific is public.
PAPER_CLAIMS = {
    "reconstruction": 'AP-MAE reconstructs masked attention patterns "with high accuracy" '
    "(StarCoder2 3B-15B).",
    "generalisation": 'AP-MAE generalises across unseen models "with minimal degradation".',
    "recurrence": "AP-MAE reveals recurring patterns across a large number of inferences.",
    "correctness": "AP-MAE predicts whether a generation will be correct without ground truth, with "
    "accuracies from 55% to 70% depending on the task (balanced 500 + 500 rows a task; noise control "
    "about 50%).",
    "dose": "Targeted interventions increase accuracy by 13.6% when applied selectively, but cause rapid "
    "collapse when applied excessively (StarCoder2-3B, identifiers, 1000 + 1000 balanced scenarios).",
}


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Spread:
    """Where a set of values lies: quartiles and extremes."""

    count: int
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class LayerReconstruction:
    layer: int
    model: float  # masked-patch MSE of AP-MAE
    mean_image: float  # of predicting the training mean image
    mean_visible: float  # of predicting each image's mean visible value


@dataclass(frozen=True)
class ReconstructionFinding:
    """Claim (i): masked-patch error against two trivial baselines, on a split never used for selection."""

    reason: str | None = None
    checkpoint: str | None = None
    split: str | None = None
    patterns: int | None = None
    windows: int | None = None
    model: Estimate | None = None
    mean_image: Estimate | None = None
    mean_visible: Estimate | None = None
    per_layer: list[LayerReconstruction] = field(default_factory=list)


# How to read the AP-MAE transfer matrix (claim ii), for the report and `attnlens eval-apmae --matrix`.
TRANSFER_HOW_TO_READ = (
    "How to read it: each cell is the masked-patch MSE (lower is better) of the row's checkpoint on held-out "
    "patterns of the column's model, with its 95% bootstrap interval over windows, and that MSE divided by "
    "the better of two trivial baselines on the same patches (below 1: better than both). Read along a row: "
    "a cell whose ratio stays near the own-model cell's (the intervals overlap) is the minimal degradation "
    "the paper describes; a ratio near or above 1 means the checkpoint does no better there than a mean "
    "image. Compare ratios rather than raw MSEs across columns: models' patterns differ in how hard they are "
    "for every predictor. Windows are cut to the checkpoint's source length in tokens of the column's model "
    "and pooled to its image size. The mean-image baseline is the training split's mean where the "
    "checkpoint's training cache is at hand, else the mean of the set's other windows (each cell's record in "
    "transfer.json says which). A cell marked not measured is filled by `attnlens eval-apmae --checkpoint C "
    "--model M`."
)


@dataclass(frozen=True)
class GeneralisationFinding:
    """Claim (ii): the AP-MAE transfer matrix recorded by `attnlens eval-apmae --model` (checkpoint x model,
    as table text), or why there is none."""

    models: list[str]
    reason: str | None = None
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class HeadStability:
    head: str  # L{layer}H{head}
    adjusted_rand: float  # between the labels of two clusterings, each fitted on one half of the rows
    clusters_first_half: int
    clusters_second_half: int


@dataclass(frozen=True)
class RecurrenceFinding:
    """Claim (iii): clusters per head, their stability across halves, and their recurrence across tasks."""

    reason: str | None = None
    clustering_id: int | None = None
    heads: int = 0
    patterns: int = 0
    clusters_per_head: Spread | None = None
    noise_fraction: float | None = None  # of all clustered patterns
    heads_without_clusters: int = 0
    clusters: int = 0
    clusters_across_tasks: int = 0  # clusters with at least two tasks above `task_share`
    task_share: float = 0.1
    stability: list[HeadStability] = field(default_factory=list)
    stability_spread: Spread | None = None
    stability_reason: str | None = None


@dataclass(frozen=True)
class TaskCorrectness:
    """Claim (iv) on one task and predictor kind: stratified, balanced and exact-hole figures."""

    task: str
    kind: str
    predictor_id: int
    n_rows: int
    chance: float | None  # None when the predictor stored no chance level
    accuracy: Estimate
    shuffled: Estimate | None
    confidence: Estimate | None  # the model's own confidence at the hole, same folds
    combined: Estimate | None  # attention + confidence
    gain: Estimate | None  # combined minus confidence, paired bootstrap
    balanced_per_class: int | None
    balanced_accuracy: Estimate | None
    balanced_confidence: Estimate | None
    exact_rows: int | None
    exact_chance: float | None
    exact_accuracy: Estimate | None
    note: str | None = None  # why a part is missing


@dataclass(frozen=True)
class CorrectnessFinding:
    rows: list[TaskCorrectness] = field(default_factory=list)
    reason: str | None = None


@dataclass(frozen=True)
class DosePoint:
    rule: str
    n: int
    n_heads: int  # heads actually ablated (a rule's pool may be smaller than n)
    accuracy: Estimate
    change: Estimate
    incorrect_to_correct: Estimate  # a COUNT of scenarios (of `DoseFinding.scenarios`), bootstrap interval
    correct_to_incorrect: Estimate  # a count too


@dataclass(frozen=True)
class DoseFinding:
    """Claim (v): accuracy against heads ablated per rule, on held-out scenarios."""

    reason: str | None = None
    experiment_id: int | None = None
    task: str | None = None
    scenarios: int | None = None
    balanced: bool | None = None
    baseline_accuracy: float | None = None
    ranked_by: str | None = None
    points: list[DosePoint] = field(default_factory=list)


@dataclass(frozen=True)
class Findings:
    """Everything the report shows, with where it came from."""

    model: str
    embedder: str | None
    created_at: str
    command: str  # the command that reproduces the report
    machine: str
    inferences_per_task: dict[str, int]
    reconstruction: ReconstructionFinding
    generalisation: GeneralisationFinding
    recurrence: RecurrenceFinding
    correctness: CorrectnessFinding
    dose: DoseFinding
    seconds: dict[str, float] = field(default_factory=dict)  # time each section took


def findings_from_result(result: Mapping[str, object]) -> Findings:
    """The typed findings of a report job's stored result (`pydantic.ValidationError` if another version
    stored another shape)."""
    from pydantic import TypeAdapter

    return TypeAdapter(Findings).validate_python(result)
