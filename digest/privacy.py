"""A subscriber's data is theirs: everything stored about them, and erasing them.

`export` gathers it all (address, settings, interests, feedback, the digests sent with
their papers) as JSON-ready data; `erase` deletes the subscriber with everything that
names them and keeps only an anonymous count (`Erasure`); `purge_unconfirmed` erases
sign-ups never confirmed within `pending_purge_days`. The preferences page and the admin
API offer the same two operations.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from digest.models import (
    DIGEST_PAPERS,
    DIGESTS,
    ERASURES,
    FEEDBACK,
    INTERESTS,
    PAPERS,
    SUBSCRIBERS,
    SubscriberStatus,
)
from digest.papers import paper_url

FORMAT = "digest-export/1"
_SETTINGS = ("status", "timezone", "send_hour", "cadence", "weekday", "max_papers", "empty_note")
_TIMES = ("created_at", "confirmed_at", "status_changed_at", "confirm_sent_at")


def _stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _paper(row: Any) -> dict[str, Any]:
    return {"title": row.title, "url": paper_url(row), "arxiv_id": row.arxiv_id}


def _digests(conn: Connection, subscriber_id: int) -> list[dict[str, Any]]:
    """Every digest of the subscriber, oldest first, with the papers it listed in order."""
    rows = conn.execute(
        sa.select(DIGESTS).where(DIGESTS.c.subscriber_id == subscriber_id).order_by(DIGESTS.c.id)
    ).all()
    papers = conn.execute(
        sa.select(DIGEST_PAPERS, PAPERS.c.title, PAPERS.c.arxiv_id, PAPERS.c.url)
        .join(PAPERS, PAPERS.c.id == DIGEST_PAPERS.c.paper_id)
        .join(DIGESTS, DIGESTS.c.id == DIGEST_PAPERS.c.digest_id)
        .where(DIGESTS.c.subscriber_id == subscriber_id)
        .order_by(DIGEST_PAPERS.c.digest_id, DIGEST_PAPERS.c.rank)
    ).all()
    listed: dict[int, list[dict[str, Any]]] = {}
    for paper in papers:
        entry = _paper(paper) | {"interest": paper.interest, "held_for_later": paper.held}
        listed.setdefault(paper.digest_id, []).append(entry)
    return [
        {
            "period": row.period,
            "status": row.status,
            "created_at": _stamp(row.created_at),
            "sent_at": _stamp(row.sent_at),
            "papers": listed.get(row.id, []),
        }
        for row in rows
    ]


def export(conn: Connection, subscriber_id: int) -> dict[str, Any] | None:
    """Everything stored about one subscriber, or None if there is no such subscriber."""
    row = conn.execute(sa.select(SUBSCRIBERS).where(SUBSCRIBERS.c.id == subscriber_id)).first()
    if row is None:
        return None
    interests = conn.execute(
        sa.select(INTERESTS.c.query)
        .where(INTERESTS.c.subscriber_id == subscriber_id)
        .order_by(INTERESTS.c.position)
    ).scalars()
    feedback = conn.execute(
        sa.select(FEEDBACK, PAPERS.c.title, PAPERS.c.arxiv_id, PAPERS.c.url)
        .join(PAPERS, PAPERS.c.id == FEEDBACK.c.paper_id)
        .where(FEEDBACK.c.subscriber_id == subscriber_id)
        .order_by(FEEDBACK.c.created_at)
    ).all()
    return {
        "format": FORMAT,
        "email": row.email,
        "settings": {name: getattr(row, name) for name in _SETTINGS},
        **{name: _stamp(getattr(row, name)) for name in _TIMES},
        "interests": list(interests),
        "feedback": [
            {
                "paper": _paper(f),
                "said": "more like this" if f.kind == "more" else "not for me",
                "reason": f.reason,
                "detail": f.detail,
                "at": _stamp(f.created_at),
            }
            for f in feedback
        ],
        "digests": _digests(conn, subscriber_id),
    }


def erase(engine: Engine, subscriber_id: int, now: datetime, reason: str) -> bool:
    """Delete the subscriber and everything naming them (interests, digests, the ledger,
    feedback), counting one erasure; False if there is no such subscriber.

    A later sign-up with the same address starts afresh: nothing of this one is left.
    """
    with engine.begin() as conn:
        highest = _highest(conn)
        # Locked first: a planner inserting this subscriber's digest holds a key-share
        # lock on the row until it commits, so its digest papers are seen and deleted.
        conn.execute(
            sa.select(SUBSCRIBERS.c.id).where(SUBSCRIBERS.c.id == subscriber_id).with_for_update()
        )
        _delete_digest_papers(conn, DIGESTS.c.subscriber_id == subscriber_id)
        gone = conn.execute(SUBSCRIBERS.delete().where(SUBSCRIBERS.c.id == subscriber_id))
        if gone.rowcount != 1:
            return False
        conn.execute(ERASURES.insert().values(erased_at=now, reason=reason, count=1, **highest))
    return True


def _delete_digest_papers(conn: Connection, which: Any) -> None:
    """Delete the papers of the digests `which` selects (the digests themselves go with
    their subscriber; their papers have no foreign key to follow)."""
    digests = sa.select(DIGESTS.c.id).where(which)
    conn.execute(DIGEST_PAPERS.delete().where(DIGEST_PAPERS.c.digest_id.in_(digests)))


def _highest(conn: Connection) -> dict[str, int]:
    """The highest subscriber id now, kept with an erasure (see `subscribers._insert`)."""
    highest = conn.execute(sa.select(sa.func.max(SUBSCRIBERS.c.id))).scalar()
    return {"last_subscriber_id": int(highest or 0)}


def purge_unconfirmed(engine: Engine, now: datetime, days: float) -> int:
    """Erase the sign-ups still pending, never confirmed, `days` after their last
    confirmation email (or, with none, after they were made: pending rows the admin API
    made count too)."""
    last = sa.func.coalesce(SUBSCRIBERS.c.confirm_sent_at, SUBSCRIBERS.c.created_at)
    stale = sa.and_(
        SUBSCRIBERS.c.status == SubscriberStatus.pending,
        SUBSCRIBERS.c.confirmed_at.is_(None),
        last < now - timedelta(days=days),
    )
    with engine.begin() as conn:
        highest = _highest(conn)
        _delete_digest_papers(
            conn, DIGESTS.c.subscriber_id.in_(sa.select(SUBSCRIBERS.c.id).where(stale))
        )
        count = conn.execute(SUBSCRIBERS.delete().where(stale)).rowcount
        if count:
            erasure = {"erased_at": now, "reason": "unconfirmed", "count": count, **highest}
            conn.execute(ERASURES.insert().values(**erasure))
    return int(count)
