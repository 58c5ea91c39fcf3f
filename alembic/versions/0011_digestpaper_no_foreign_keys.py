"""digestpaper without foreign keys: planning writes millions of these rows a day, and
checking two foreign keys made each insert five times as costly on PostgreSQL; the rows
of a deleted digest are deleted with it by the code that deletes digests (privacy.py)

Revision ID: 0011_digestpaper_no_fks
Revises: 0010_erasure
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_digestpaper_no_fks"
down_revision: str | None = "0010_erasure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite's foreign keys of this table have no names: batch mode names them this way.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
KEYS = [  # (PostgreSQL's name, the batch name, column, referred table)
    ("digestpaper_digest_id_fkey", "fk_digestpaper_digest_id_digest", "digest_id", "digest"),
    ("digestpaper_paper_id_fkey", "fk_digestpaper_paper_id_paper", "paper_id", "paper"),
]


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _, _ in KEYS:
            op.drop_constraint(name, "digestpaper", type_="foreignkey")
        return
    # Recreating digestpaper is safe with foreign keys on: no table refers to it.
    with op.batch_alter_table("digestpaper", recreate="always", naming_convention=NAMING) as batch:
        for _, name, _, _ in KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    """Revert this revision."""
    for _, _, column, table in KEYS:  # rows the keys would refuse
        op.execute(f"DELETE FROM digestpaper WHERE {column} NOT IN (SELECT id FROM {table})")
    if op.get_bind().dialect.name == "postgresql":
        for name, _, column, table in KEYS:
            op.create_foreign_key(name, "digestpaper", table, [column], ["id"], ondelete="CASCADE")
        return
    with op.batch_alter_table("digestpaper", recreate="always", naming_convention=NAMING) as batch:
        for _, name, column, table in KEYS:
            batch.create_foreign_key(name, table, [column], ["id"], ondelete="CASCADE")
