"""What a subscriber's pages show: their recent digests, a digest's papers, their feed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from digest.models import DIGEST_PAPERS, DIGESTS, PAPERS, SENT_PAPERS


def recent_digests(
    conn: Connection, subscriber_id: int, limit: int = 10, *, only: int | None = None
) -> list[Any]:
    """The subscriber's latest digests that were sent, newest first, with the number of
    papers each showed (those held over are not counted)."""
    count = (
        sa.select(sa.func.count())
        .where(DIGEST_PAPERS.c.digest_id == DIGESTS.c.id, DIGEST_PAPERS.c.held.is_(False))
        .scalar_subquery()
        .label("papers")
    )
    query = (
        sa.select(DIGESTS.c.id, DIGESTS.c.period, DIGESTS.c.sent_at, count)
        .where(DIGESTS.c.subscriber_id == subscriber_id, DIGESTS.c.status == "sent")
        .order_by(DIGESTS.c.sent_at.desc())
        .limit(limit)
    )
    if only is not None:
        query = query.where(DIGESTS.c.id == only)
    return list(conn.execute(query))


def digest_papers(conn: Connection, digest_id: int) -> list[Any]:
    """Every paper a digest matched, in rank order, with why it matched, whether it was held
    over, and the digest that sent it to the subscriber (`sent_in`, None while owed)."""
    dp, d, sent = DIGEST_PAPERS.c, DIGESTS.c, SENT_PAPERS.c
    return list(
        conn.execute(
            sa.select(
                PAPERS,
                dp.interest,
                dp.rank,
                dp.score,
                dp.terms,
                dp.held,
                sent.digest_id.label("sent_in"),
            )
            .join(DIGEST_PAPERS, dp.paper_id == PAPERS.c.id)
            .join(DIGESTS, d.id == dp.digest_id)
            .outerjoin(
                SENT_PAPERS,
                sa.and_(sent.subscriber_id == d.subscriber_id, sent.paper_id == dp.paper_id),
            )
            .where(dp.digest_id == digest_id)
            .order_by(dp.rank)
        )
    )


def feed_papers(conn: Connection, subscriber_id: int, limit: int = 100) -> list[Any]:
    """The papers the subscriber has received (the ledger), newest first."""
    return list(
        conn.execute(
            sa.select(PAPERS, SENT_PAPERS.c.sent_at)
            .join(SENT_PAPERS, SENT_PAPERS.c.paper_id == PAPERS.c.id)
            .where(SENT_PAPERS.c.subscriber_id == subscriber_id)
            .order_by(SENT_PAPERS.c.sent_at.desc(), PAPERS.c.id.desc())
            .limit(limit)
        )
    )
