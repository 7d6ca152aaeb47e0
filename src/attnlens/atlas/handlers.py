"""Which use case runs each job kind: the one table the worker's job runner and the CLI read."""

from __future__ import annotations

from attnlens.atlas.build_job import run_atlas_build
from attnlens.atlas.clustering import run_atlas_cluster
from attnlens.atlas.experiments import run_ablation_experiment
from attnlens.atlas.families import run_pattern_families
from attnlens.atlas.findings import run_findings_report
from attnlens.atlas.jobs import JobHandler
from attnlens.atlas.mapping import run_atlas_map
from attnlens.atlas.score_backfill import run_head_scores
from attnlens.atlas.sweep import run_head_sweep
from attnlens.atlas.train_predictors import run_train_predictors
from attnlens.contracts.findings import FINDINGS_REPORT
from attnlens.contracts.jobs import (
    ABLATION_EXPERIMENT,
    ATLAS_BUILD,
    ATLAS_CLUSTER,
    ATLAS_MAP,
    HEAD_SCORES,
    HEAD_SWEEP,
    PATTERN_FAMILIES,
    TRAIN_PREDICTORS,
)

JOB_HANDLERS: dict[str, JobHandler] = {
    ATLAS_BUILD: run_atlas_build,
    ATLAS_CLUSTER: run_atlas_cluster,
    ATLAS_MAP: run_atlas_map,
    TRAIN_PREDICTORS: run_train_predictors,
    ABLATION_EXPERIMENT: run_ablation_experiment,
    FINDINGS_REPORT: run_findings_report,
    HEAD_SWEEP: run_head_sweep,
    HEAD_SCORES: run_head_scores,
    PATTERN_FAMILIES: run_pattern_families,
}
