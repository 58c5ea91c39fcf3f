"""matching: bare words side by side are one phrase; every interest's canonical form again

Revision ID: 0008_loose_phrases
Revises: 0007_held_papers
Create Date: 2026-12-02

The canonical form is what matching evaluates. Each stored line is parsed again as its
owner typed it, so `state space models` now means the phrase. A dangling `AND`, which
the new grammar refuses, is dropped first; a line that still does not parse keeps its old
canonical form, which does. Papers get an index on their arXiv id (`like:` looks it up).
"""

import re
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


_DANGLING_AND = re.compile(r"^\s*AND\b|\bAND\s*$|\bAND(?=\s+(?:AND|OR)\b)|(?<=\bOR)\s+AND\b")


def _canonical(query: str) -> str | None:
    for line in (query, _DANGLING_AND.sub(" ", query)):
        try:
            return parse(line).canonical
        except InterestError:
            continue
    return None


def upgrade() -> None:
    """Apply this revision: re-derive every canonical form from the line as typed."""
    op.create_index("ix_paper_arxiv_id", "paper", ["arxiv_id"])
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
            canonical = _canonical(row.query)
            if canonical is not None and canonical != row.canonical:
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
    """Revert this revision: the index goes (the old canonical forms are not kept)."""
    op.drop_index("ix_paper_arxiv_id", table_name="paper")
