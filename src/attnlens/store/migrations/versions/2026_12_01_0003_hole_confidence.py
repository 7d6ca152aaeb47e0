"""The model's confidence at the hole: top-1 probability, top-1 minus top-2 margin, next-token entropy.

The honest baseline for correctness predictors. Rows built before this revision keep NULL (the logits are
not stored, so they cannot be backfilled); the predictor report says how many rows lack it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("top1_prob", "top1_margin", "next_token_entropy")


def upgrade() -> None:
    """Upgrade schema."""

    with op.batch_alter_table("inference", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table("inference", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
