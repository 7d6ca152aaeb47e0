"""What the pages of a static snapshot show (`attnlens export-site`): the facts `site` gathers from the
store and `site_render` writes as HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from attnlens.store.analyses import PredictorRow


@dataclass(frozen=True)
class TaskRow:
    name: str
    description: str
    control: bool
    inferences: int
    correct: int
    low: float
    high: float


@dataclass(frozen=True)
class TaskHeads:
    """A task's most accurate head-ranking predictor and its top heads: (name, mean |SHAP|, signed mean)."""

    task: str | None
    kind: str
    accuracy: float
    low: float
    high: float
    chance: float | None
    heads: list[tuple[str, float, float]]

    @property
    def above_chance(self) -> bool:
        return self.chance is not None and self.low > self.chance


@dataclass(frozen=True)
class InferenceCard:
    id: int
    source: str
    task: str | None
    file_path: str | None
    target: str | None
    completion: str
    first_token_correct: bool | None
    span_correct: bool | None
    expected_prob: float | None


@dataclass(frozen=True)
class GridCell:
    name: str
    layer: int
    head: int
    thumbnail: np.ndarray  # (size, size) uint8
    stats: dict[str, float]
    cluster: int | None


@dataclass(frozen=True)
class InferenceView:
    card: InferenceCard
    mode: str | None
    node_type: str | None
    prefix: str | None  # None: the code could not be decoded (`code_note` says why)
    suffix: str | None
    code_note: str | None
    cells: list[GridCell]
    clustering_id: int | None


@dataclass(frozen=True)
class HeadSummary:
    """One head's statistics over the model's mined inferences: median and quartiles of each."""

    name: str
    layer: int
    head: int
    n: int
    quartiles: dict[str, tuple[float, float, float]]  # statistic -> (q1, median, q3)
    clusters: int | None  # real clusters (noise left out) in the newest clustering; None: no clustering
    noise: int | None  # patterns the clustering left as noise
    top_in: list[str]  # tasks whose head-ranking predictor has this head in its top TOP_HEADS


@dataclass(frozen=True)
class MapView:
    map_id: int
    name: str
    created_at: str
    total: int
    shown: int
    clustering_id: int | None
    rows: list[Any]  # (x, y, pattern id, layer, head, task, correct, cluster)


@dataclass
class Overview:
    model: str
    exported_at: str
    models: list[str]
    embedders: list[tuple[str, int]]
    configured_checkpoint: str
    counts: dict[str, Any]
    tasks: list[TaskRow]
    predictors: list[PredictorRow]
    heads: list[TaskHeads]
    clustering: str | None  # "clustering N of DATE" or None
    map_state: str  # what map.html shows
    heads_state: str  # what heads.html shows, or why it is left out
    heads_page: bool = False  # heads.html is written
    chosen_by: str = ""  # how the exported completions were chosen
    inferences: list[InferenceCard] = field(default_factory=list)

    @property
    def completions(self) -> int:
        """The model's mined completions (the sum of the task table)."""
        return sum(t.inferences for t in self.tasks)
