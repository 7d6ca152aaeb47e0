"""Relational head-type scores per head pattern (NULL where the input has no such token pairs), its AP-MAE
reconstruction error (the anomaly signal) and, per inference, the version of the score definitions its
patterns follow (NULL: not computed yet; the `head_scores` backfill job computes them by re-running the
model, since raw attention is not stored).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SCORES = (
    "duplicate_token_mass",
    "induction_mass",
    "bracket_mass",
    "same_identifier_mass",
    "declaration_mass",
    "callee_mass",
)


def upgrade() -> None:
    """Upgrade schema."""

    with op.batch_alter_table("head_pattern", schema=None) as batch_op:
        for name in _SCORES:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("reconstruction_error", sa.Float(), nullable=True))
    with op.batch_alter_table("inference", schema=None) as batch_op:
        batch_op.add_column(sa.Column("head_scores_version", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table("inference", schema=None) as batch_op:
        batch_op.drop_column("head_scores_version")
    with op.batch_alter_table("head_pattern", schema=None) as batch_op:
        batch_op.drop_column("reconstruction_error")
        for name in reversed(_SCORES):
            batch_op.drop_column(name)
