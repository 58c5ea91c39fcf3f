"""erasure: the anonymous count of erased subscribers (self, admin, unconfirmed);
subscriber.feed_version: a feed URL that stays the same until it is replaced

Revision ID: 0010_erasure
Revises: 0009_feedback
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_erasure"
down_revision: str | None = "0009_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "erasure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_subscriber_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("feed_version", sa.Integer(), server_default="1", nullable=False)
        )


def downgrade() -> None:
    """Revert this revision."""
    # Not batch mode: on SQLite that copies the table, and dropping the old copy would
    # delete every row that refers to a subscriber (ON DELETE CASCADE). SQLite >= 3.35
    # and PostgreSQL both drop a column in place.
    op.execute("ALTER TABLE subscriber DROP COLUMN feed_version")
    op.drop_table("erasure")
