"""delivery: claims walk the outbox by (status, id) instead of sorting every planned row

Revision ID: 0006_claim_index
Revises: 0005_schedule
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_claim_index"
down_revision: str | None = "0005_schedule"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("digest", schema=None) as batch_op:
        batch_op.drop_index("ix_digest_status")
        batch_op.create_index("ix_digest_status_id", ["status", "id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("digest", schema=None) as batch_op:
        batch_op.drop_index("ix_digest_status_id")
        batch_op.create_index("ix_digest_status", ["status"], unique=False)
