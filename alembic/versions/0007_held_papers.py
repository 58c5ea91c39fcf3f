"""delivery: a digest records every paper it matched; those that did not fit are held over

Revision ID: 0007_held_papers
Revises: 0006_claim_index
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_held_papers"
down_revision: str | None = "0006_claim_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("digestpaper", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("held", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("digestpaper", schema=None) as batch_op:
        batch_op.drop_column("held")
