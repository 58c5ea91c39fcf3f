"""paper sources: source extras on papers, ingest runs, HTTP validators

Revision ID: 0003_sources
Revises: 0002_delivery
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_sources"
down_revision: str | None = "0002_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("paper", schema=None) as batch_op:
        batch_op.add_column(sa.Column("announce_type", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("primary_category", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("comment", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("journal_ref", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("ai_summary", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("ai_keywords", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("github_repo", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("project_page", sa.String(length=500), nullable=True))

    op.create_table(
        "ingestrun",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("not_modified", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ingestrun", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingestrun_source"), ["source"], unique=False)

    op.create_table(
        "httpvalidator",
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("url"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("httpvalidator")
    with op.batch_alter_table("ingestrun", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingestrun_source"))
    op.drop_table("ingestrun")
    with op.batch_alter_table("paper", schema=None) as batch_op:
        batch_op.drop_column("project_page")
        batch_op.drop_column("github_repo")
        batch_op.drop_column("ai_keywords")
        batch_op.drop_column("ai_summary")
        batch_op.drop_column("journal_ref")
        batch_op.drop_column("comment")
        batch_op.drop_column("primary_category")
        batch_op.drop_column("announce_type")
