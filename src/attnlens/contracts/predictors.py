"""What a correctness predictor kind is, in words every layer shares: its name, which features it takes,
and what it is. The implementations register themselves in `attnlens.analysis.predictor_kinds`; the API
lists the registered kinds from there (`GET /api/predictors/kinds`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# cluster_ids: (rows, head) int64 cluster labels in the clustering the predictor was trained on;
# embeddings: (rows, head, dim) float32 AP-MAE embeddings.
FeatureInput = Literal["cluster_ids", "embeddings"]


@dataclass(frozen=True)
class PredictorKindSpec:
    """A predictor kind: its stable name, its input, and a one-line description for people."""

    name: str
    features: FeatureInput
    description: str
