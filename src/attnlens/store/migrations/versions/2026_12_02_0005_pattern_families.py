"""Pattern families: one global clustering of every head's pattern embeddings of a model (a `family_run`),
its families (`pattern_family`, with their summaries: score medians and labels, where they occur, the
correctness of their members' completions, example patterns) and every pattern's family
(`family_assignment`; label -1: noise, in no family).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table(
        "family_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("embedder", sa.String(length=500), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_family_run_job_id_job"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_run")),
    )
    op.create_table(
        "pattern_family",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_run_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("medoid_head_pattern_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["family_run_id"],
            ["family_run.id"],
            name=op.f("fk_pattern_family_family_run_id_family_run"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["medoid_head_pattern_id"],
            ["head_pattern.id"],
            name=op.f("fk_pattern_family_medoid_head_pattern_id_head_pattern"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pattern_family")),
        sa.UniqueConstraint("family_run_id", "label", name=op.f("uq_pattern_family_family_run_id_label")),
    )
    op.create_table(
        "family_assignment",
        sa.Column("family_run_id", sa.Integer(), nullable=False),
        sa.Column("head_pattern_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("vote_share", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["family_run_id"],
            ["family_run.id"],
            name=op.f("fk_family_assignment_family_run_id_family_run"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["head_pattern_id"],
            ["head_pattern.id"],
            name=op.f("fk_family_assignment_head_pattern_id_head_pattern"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("family_run_id", "head_pattern_id", name=op.f("pk_family_assignment")),
    )
    with op.batch_alter_table("family_assignment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_family_assignment_head_pattern_id"), ["head_pattern_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table("family_assignment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_family_assignment_head_pattern_id"))
    op.drop_table("family_assignment")
    op.drop_table("pattern_family")
    op.drop_table("family_run")
