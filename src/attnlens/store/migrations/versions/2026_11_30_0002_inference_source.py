"""Inference source: `mined` (the atlas) or `pasted` (kept apart from every analysis).

Backfill: an inference of a scenario whose corpus file is in corpus `pasted` (or whose alignment is
`pasted`: pasted code identical to a mined file shares that file's row), or one without a scenario (pasted
code before scenarios were made for it), is `pasted`; every other one is `mined`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL = """
UPDATE inference SET source = 'pasted'
WHERE scenario_id IS NULL
   OR scenario_id IN (
        SELECT scenario.id FROM scenario
        JOIN corpus_file ON corpus_file.id = scenario.corpus_file_id
        WHERE corpus_file.corpus = 'pasted' OR scenario.alignment = 'pasted'
   )
"""


def upgrade() -> None:
    """Upgrade schema."""

    with op.batch_alter_table("inference", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=8), server_default="mined", nullable=False))
        batch_op.create_check_constraint(
            op.f("ck_inference_source"), sa.text("source IN ('mined', 'pasted')")
        )
    op.execute(_BACKFILL)


def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table("inference", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_inference_source"), type_="check")
        batch_op.drop_column("source")
