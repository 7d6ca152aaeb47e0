"""Initial schema: corpus files, scenarios, inferences, head patterns, clusterings, maps, predictors, jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table(
        "corpus_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("corpus", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("n_bytes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corpus_file")),
        sa.UniqueConstraint("sha256", name=op.f("uq_corpus_file_sha256")),
    )
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name=op.f("ck_job_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_state_id"), ["state", "id"], unique=False)

    op.create_table(
        "clustering",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("embedder", sa.String(length=500), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_clustering_job_id_job"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clustering")),
    )
    op.create_table(
        "pattern_map",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_pattern_map_job_id_job"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pattern_map")),
    )
    op.create_table(
        "scenario",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("corpus_file_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("node_type", sa.String(length=100), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("hole_start", sa.Integer(), nullable=False),
        sa.Column("hole_end", sa.Integer(), nullable=False),
        sa.Column("target_text", sa.Text(), nullable=False),
        sa.Column("target_ids", sa.LargeBinary(), nullable=False),
        sa.Column("prompt_ids", sa.LargeBinary(), nullable=False),
        sa.Column("context_tokens", sa.Integer(), nullable=False),
        sa.Column("n_prefix_tokens", sa.Integer(), nullable=False),
        sa.Column("n_suffix_tokens", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("alignment", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["corpus_file_id"],
            ["corpus_file.id"],
            name=op.f("fk_scenario_corpus_file_id_corpus_file"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenario")),
        sa.UniqueConstraint(
            "corpus_file_id",
            "model_name",
            "task",
            "hole_start",
            "hole_end",
            "mode",
            "context_tokens",
            name=op.f("uq_scenario_corpus_file_id_model_name_task_hole_start_hole_end_mode_context_tokens"),
        ),
    )
    with op.batch_alter_table("scenario", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scenario_model_name_task"), ["model_name", "task"], unique=False)

    op.create_table(
        "inference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scenario_id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("prompt_ids", sa.LargeBinary(), nullable=True),
        sa.Column("prompt_text", sa.Text(), nullable=True),
        sa.Column("completion_text", sa.Text(), nullable=False),
        sa.Column("completion_ids", sa.LargeBinary(), nullable=False),
        sa.Column("first_token_correct", sa.Boolean(), nullable=True),
        sa.Column("span_correct", sa.Boolean(), nullable=True),
        sa.Column("expected_token_prob", sa.Float(), nullable=True),
        sa.Column("embedder", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["scenario_id"],
            ["scenario.id"],
            name=op.f("fk_inference_scenario_id_scenario"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference")),
        sa.UniqueConstraint("scenario_id", "model_name", name=op.f("uq_inference_scenario_id_model_name")),
    )
    with op.batch_alter_table("inference", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inference_model_name"), ["model_name"], unique=False)

    op.create_table(
        "predictor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=True),
        sa.Column("clustering_id", sa.Integer(), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clustering_id"],
            ["clustering.id"],
            name=op.f("fk_predictor_clustering_id_clustering"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_predictor_job_id_job"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictor")),
    )
    op.create_table(
        "head_pattern",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inference_id", sa.Integer(), nullable=False),
        sa.Column("layer", sa.SmallInteger(), nullable=False),
        sa.Column("head", sa.SmallInteger(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=False),
        sa.Column("thumbnail_size", sa.SmallInteger(), nullable=False),
        sa.Column("entropy", sa.Float(), nullable=False),
        sa.Column("diagonal_mass", sa.Float(), nullable=False),
        sa.Column("previous_token_mass", sa.Float(), nullable=False),
        sa.Column("first_token_mass", sa.Float(), nullable=False),
        sa.Column("local_mass", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inference_id"],
            ["inference.id"],
            name=op.f("fk_head_pattern_inference_id_inference"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_head_pattern")),
        sa.UniqueConstraint(
            "inference_id", "layer", "head", name=op.f("uq_head_pattern_inference_id_layer_head")
        ),
    )
    with op.batch_alter_table("head_pattern", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_head_pattern_layer_head"), ["layer", "head"], unique=False)

    op.create_table(
        "predictor_evaluation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("predictor_id", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("folds", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("accuracy_low", sa.Float(), nullable=False),
        sa.Column("accuracy_high", sa.Float(), nullable=False),
        sa.Column("brier", sa.Float(), nullable=True),
        sa.Column("calibration_error", sa.Float(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["predictor_id"],
            ["predictor.id"],
            name=op.f("fk_predictor_evaluation_predictor_id_predictor"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictor_evaluation")),
    )
    op.create_table(
        "cluster",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clustering_id", sa.Integer(), nullable=False),
        sa.Column("layer", sa.SmallInteger(), nullable=False),
        sa.Column("head", sa.SmallInteger(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("medoid_head_pattern_id", sa.Integer(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clustering_id"],
            ["clustering.id"],
            name=op.f("fk_cluster_clustering_id_clustering"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["medoid_head_pattern_id"],
            ["head_pattern.id"],
            name=op.f("fk_cluster_medoid_head_pattern_id_head_pattern"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cluster")),
        sa.UniqueConstraint(
            "clustering_id", "layer", "head", "label", name=op.f("uq_cluster_clustering_id_layer_head_label")
        ),
    )
    op.create_table(
        "cluster_assignment",
        sa.Column("clustering_id", sa.Integer(), nullable=False),
        sa.Column("head_pattern_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("vote_share", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clustering_id"],
            ["clustering.id"],
            name=op.f("fk_cluster_assignment_clustering_id_clustering"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["head_pattern_id"],
            ["head_pattern.id"],
            name=op.f("fk_cluster_assignment_head_pattern_id_head_pattern"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("clustering_id", "head_pattern_id", name=op.f("pk_cluster_assignment")),
    )
    with op.batch_alter_table("cluster_assignment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cluster_assignment_head_pattern_id"), ["head_pattern_id"], unique=False
        )

    op.create_table(
        "map_point",
        sa.Column("pattern_map_id", sa.Integer(), nullable=False),
        sa.Column("head_pattern_id", sa.Integer(), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("fitted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["head_pattern_id"],
            ["head_pattern.id"],
            name=op.f("fk_map_point_head_pattern_id_head_pattern"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pattern_map_id"],
            ["pattern_map.id"],
            name=op.f("fk_map_point_pattern_map_id_pattern_map"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pattern_map_id", "head_pattern_id", name=op.f("pk_map_point")),
    )
    with op.batch_alter_table("map_point", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_map_point_head_pattern_id"), ["head_pattern_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table("map_point", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_map_point_head_pattern_id"))

    op.drop_table("map_point")
    with op.batch_alter_table("cluster_assignment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cluster_assignment_head_pattern_id"))

    op.drop_table("cluster_assignment")
    op.drop_table("cluster")
    op.drop_table("predictor_evaluation")
    with op.batch_alter_table("head_pattern", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_head_pattern_layer_head"))

    op.drop_table("head_pattern")
    op.drop_table("predictor")
    with op.batch_alter_table("inference", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inference_model_name"))

    op.drop_table("inference")
    with op.batch_alter_table("scenario", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scenario_model_name_task"))

    op.drop_table("scenario")
    op.drop_table("pattern_map")
    op.drop_table("clustering")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_state_id"))

    op.drop_table("job")
    op.drop_table("corpus_file")
