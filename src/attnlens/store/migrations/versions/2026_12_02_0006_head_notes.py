"""Notes and labels people give heads, clusters and families, and entries imported from catalogues of known
heads: one table, apart from the computed labels.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table(
        "head_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("source_url", sa.String(length=1000), nullable=True),
        sa.Column("author", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('head', 'cluster', 'family')", name=op.f("ck_head_note_kind")),
        sa.CheckConstraint("origin IN ('user', 'catalogue')", name=op.f("ck_head_note_origin")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_head_note")),
    )
    with op.batch_alter_table("head_note", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_head_note_model_name_kind_target"), ["model_name", "kind", "target"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table("head_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_head_note_model_name_kind_target"))
    op.drop_table("head_note")
