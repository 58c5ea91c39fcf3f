"""delivery: claim tokens on digests, soft bounce counts on subscribers

Revision ID: 0002_delivery
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_delivery"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("digest") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(length=64), nullable=True))
    with op.batch_alter_table("subscriber") as batch:
        batch.add_column(
            sa.Column("soft_bounces", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("subscriber") as batch:
        batch.drop_column("soft_bounces")
    with op.batch_alter_table("digest") as batch:
        batch.drop_column("claim_token")
