"""Analyses over pattern embeddings: pure functions, numpy in, numpy and dataclasses out.

- `clustering`: per-head UMAP + HDBSCAN clusters, medoids and attribute counts (jobs only: UMAP compiles).
- `cluster_map`: the global 2-D map (UMAP fitted on a sample, the rest transformed).
- `assign`: k-nearest-neighbour cluster assignment and map placement of new inferences, no UMAP.
- `predictor_kinds` (the registry), `kind_catboost`, `kind_embedding_pca`, `predictors`, `evaluation`:
  correctness predictors per task, cross-validated, serialisable to bytes.
- `importance`: per-head SHAP values with CatBoost's column layout read correctly.
- `ablation`: head-selection rules and paired statistics of population ablation experiments.
- `stats`: Wilson and bootstrap intervals, Brier score, reliability tables.

Heavy libraries (umap, catboost, sklearn) are imported inside the functions that need them.
"""

from attnlens.analysis.ablation import (
    SELECTION_RULES,
    AblationStatistics,
    HeadRanking,
    HeadSelection,
    ablation_statistics,
    select_heads,
)
from attnlens.analysis.assign import ClusterAssigner, ClusterAssignment, assign_clusters, place_on_map
from attnlens.analysis.cluster_map import ClusterMap, build_cluster_map
from attnlens.analysis.clustering import NOISE, ClusterSummary, HeadClustering, cluster_head, cluster_heads
from attnlens.analysis.evaluation import PredictorEvaluation, cross_validate_predictor, train_final_predictor
from attnlens.analysis.importance import HeadShap, head_shap_values
from attnlens.analysis.kind_catboost import ClusterCatBoostPredictor, fit_cluster_predictor
from attnlens.analysis.kind_embedding_pca import EmbeddingPCAPredictor, fit_embedding_predictor
from attnlens.analysis.predictor_kinds import (
    Predictor,
    PredictorKindImpl,
    predictor_kind,
    predictor_kinds,
    register_predictor_kind,
)
from attnlens.analysis.predictors import predictor_from_bytes, predictor_to_bytes
from attnlens.analysis.stats import Interval, ReliabilityBin, wilson_interval

__all__ = [
    "NOISE",
    "SELECTION_RULES",
    "AblationStatistics",
    "ClusterAssigner",
    "ClusterAssignment",
    "ClusterCatBoostPredictor",
    "ClusterMap",
    "ClusterSummary",
    "EmbeddingPCAPredictor",
    "HeadClustering",
    "HeadRanking",
    "HeadSelection",
    "HeadShap",
    "Interval",
    "Predictor",
    "PredictorEvaluation",
    "PredictorKindImpl",
    "ReliabilityBin",
    "ablation_statistics",
    "assign_clusters",
    "build_cluster_map",
    "cluster_head",
    "cluster_heads",
    "cross_validate_predictor",
    "fit_cluster_predictor",
    "fit_embedding_predictor",
    "head_shap_values",
    "place_on_map",
    "register_predictor_kind",
    "predictor_from_bytes",
    "predictor_kind",
    "predictor_kinds",
    "predictor_to_bytes",
    "select_heads",
    "train_final_predictor",
    "wilson_interval",
]
