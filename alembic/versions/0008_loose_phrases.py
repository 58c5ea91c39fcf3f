"""matching: bare words side by side are one phrase; every interest's canonical form again

Revision ID: 0008_loose_phrases
Revises: 0007_held_papers
Create Date: 2026-12-02

The canonical form is what matching evaluates. Each stored line is parsed again as its
owner typed it, so `state space models` now means the phrase. A line the new grammar
refuses (a dangling `AND`) keeps its old canonical form, which still parses.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from digest.match.query import InterestError, parse

revision: str = "0008_loose_phrases"
down_revision: str | None = "0007_held_papers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INTERESTS = sa.table(
    "interest", sa.column("id", sa.Integer), sa.column("query"), sa.column("canonical")
)


def upgrade() -> None:
    """Apply this revision: re-derive every canonical form from the line as typed."""
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(_INTERESTS.c.id, _INTERESTS.c.query, _INTERESTS.c.canonical)
            .where(_INTERESTS.c.id > last)
            .order_by(_INTERESTS.c.id)
            .limit(5000)
        ).all()
        if not rows:
            return
        changed = []
        for row in rows:
            try:
                canonical = parse(row.query).canonical
            except InterestError:
                continue
            if canonical != row.canonical:
                changed.append({"row_id": row.id, "new": canonical})
        if changed:
            conn.execute(
                _INTERESTS.update()
                .where(_INTERESTS.c.id == sa.bindparam("row_id"))
                .values(canonical=sa.bindparam("new")),
                changed,
            )
        last = rows[-1].id


def downgrade() -> None:
    """Revert this revision: nothing to undo in the schema (the old forms are not kept)."""
