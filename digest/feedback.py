"""What readers taught their digest with one click: record, undo, forget, and read back.

A reader says of a paper "More like this" or "Not for me" (optionally why: not my topic,
this author, this kind of paper). The last click on a paper is the one kept, so two
clicks on the same link count once. Planning reads each subscriber's `Taste`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from digest.clock import utcnow
from digest.db import among
from digest.models import DIGEST_PAPERS, DIGESTS, FEEDBACK, PAPERS, DigestStatus, FeedbackKind

REASONS = ("topic", "author", "kind")
KINDS_OF_PAPER = ("survey", "benchmark", "position paper")


class FeedbackError(ValueError):
    """A click that cannot be recorded as given; the message says why."""


@dataclass
class Taste:
    """One subscriber's feedback as planning uses it."""

    liked: list[int] = field(default_factory=list)
    disliked: list[int] = field(default_factory=list)  # "not my topic" (or no reason)
    muted_authors: list[str] = field(default_factory=list)
    muted_kinds: list[str] = field(default_factory=list)

    def seeds(self) -> list[int]:
        """The papers whose likeness moves others: liked and disliked ones."""
        return [*self.liked, *self.disliked]


def check(kind: str, reason: str, detail: str, authors: tuple[str, ...]) -> None:
    """Refuse a click that does not make sense for this paper (FeedbackError)."""
    if kind not in (FeedbackKind.more, FeedbackKind.less):
        raise FeedbackError(f"unknown choice {kind!r}")
    if kind == FeedbackKind.more and (reason or detail):
        raise FeedbackError("'More like this' takes no reason")
    if reason and reason not in REASONS:
        raise FeedbackError(f"unknown reason {reason!r}")
    if reason == "author" and detail not in authors:
        raise FeedbackError("name one of the paper's authors")
    if reason == "kind" and detail not in KINDS_OF_PAPER:
        raise FeedbackError(f"the kind of paper is one of {', '.join(KINDS_OF_PAPER)}")


def record(
    engine: Engine,
    subscriber_id: int,
    paper_id: int,
    kind: str,
    reason: str = "",
    detail: str = "",
    now: datetime | None = None,
) -> bool:
    """Keep this click as the reader's word on the paper; False if it was already so."""
    with engine.begin() as conn:
        paper = conn.execute(sa.select(PAPERS.c.authors).where(PAPERS.c.id == paper_id)).first()
        if paper is None:
            raise FeedbackError(f"no paper {paper_id}")
        check(kind, reason, detail, tuple(paper.authors or ()))
        key = (FEEDBACK.c.subscriber_id == subscriber_id) & (FEEDBACK.c.paper_id == paper_id)
        current = conn.execute(sa.select(FEEDBACK).where(key)).first()
        if current is not None and (current.kind, current.reason, current.detail) == (
            kind,
            reason,
            detail,
        ):
            return False
        conn.execute(FEEDBACK.delete().where(key))
        conn.execute(
            FEEDBACK.insert().values(
                subscriber_id=subscriber_id,
                paper_id=paper_id,
                kind=kind,
                reason=reason,
                detail=detail,
                created_at=now or utcnow(),
            )
        )
    return True


def undo(engine: Engine, subscriber_id: int, paper_id: int) -> bool:
    """Forget the reader's word on one paper; False if there was none."""
    with engine.begin() as conn:
        gone = conn.execute(
            FEEDBACK.delete().where(
                FEEDBACK.c.subscriber_id == subscriber_id, FEEDBACK.c.paper_id == paper_id
            )
        )
    return bool(gone.rowcount)


def forget(engine: Engine, subscriber_id: int) -> int:
    """Forget everything this reader taught; how many clicks were forgotten."""
    with engine.begin() as conn:
        gone = conn.execute(FEEDBACK.delete().where(FEEDBACK.c.subscriber_id == subscriber_id))
    return int(gone.rowcount or 0)


def learned(conn: Connection, subscriber_id: int) -> list[Any]:
    """The reader's clicks, newest first, each with its paper's title."""
    return list(
        conn.execute(
            sa.select(FEEDBACK, PAPERS.c.title)
            .join(PAPERS, PAPERS.c.id == FEEDBACK.c.paper_id)
            .where(FEEDBACK.c.subscriber_id == subscriber_id)
            .order_by(FEEDBACK.c.created_at.desc(), FEEDBACK.c.paper_id)
        )
    )


PROPOSE_AFTER = 3  # "More like this" clicks before a line of them is proposed
PROPOSED_SEEDS = 5


def proposal(learned_rows: list[Any], lines: list[str]) -> str | None:
    """An interest line made of the reader's latest liked papers (`like:ID OR ...`), once
    they have liked PROPOSE_AFTER, unless their lines already hold it."""
    liked = [row.paper_id for row in learned_rows if row.kind == FeedbackKind.more]
    if len(liked) < PROPOSE_AFTER:
        return None
    line = " OR ".join(f"like:{paper}" for paper in liked[:PROPOSED_SEEDS])
    line += "  # More like what I liked"
    return (
        None
        if any(existing.split("  #")[0] == line.split("  #")[0] for existing in lines)
        else line
    )


def tastes(conn: Connection, ids: list[int]) -> dict[int, Taste]:
    """Each of these subscribers' feedback, for those who gave any."""
    found: dict[int, Taste] = defaultdict(Taste)
    for start in range(0, len(ids), 5000):
        rows = conn.execute(
            sa.select(FEEDBACK)
            .where(among(conn, FEEDBACK.c.subscriber_id, ids[start : start + 5000]))
            .order_by(FEEDBACK.c.created_at, FEEDBACK.c.paper_id)
        )
        for row in rows:
            taste = found[row.subscriber_id]
            if row.kind == FeedbackKind.more:
                taste.liked.append(row.paper_id)
            elif row.reason == "author":
                taste.muted_authors.append(row.detail)
            elif row.reason == "kind":
                taste.muted_kinds.append(row.detail)
            else:
                taste.disliked.append(row.paper_id)
    return dict(found)


def stats(conn: Connection, now: datetime, days: int = 30) -> dict[str, Any]:
    """The clicks kept, by kind, and the share of the digests sent in the last `days`
    with at least one "Not for me" on their papers: the first measure of digest quality."""
    since = now - timedelta(days=days)
    clicks = dict.fromkeys((kind.value for kind in FeedbackKind), 0)
    for kind, count in conn.execute(
        sa.select(FEEDBACK.c.kind, sa.func.count()).group_by(FEEDBACK.c.kind)
    ):
        clicks[str(kind)] = int(count)
    sent = (
        sa.select(DIGESTS.c.id, DIGESTS.c.subscriber_id)
        .where(DIGESTS.c.status == DigestStatus.sent, DIGESTS.c.sent_at > since)
        .subquery()
    )
    total = conn.execute(sa.select(sa.func.count()).select_from(sent)).scalar_one()
    unwanted = conn.execute(
        sa.select(sa.func.count(sa.distinct(sent.c.id))).select_from(
            sent.join(DIGEST_PAPERS, DIGEST_PAPERS.c.digest_id == sent.c.id).join(
                FEEDBACK,
                (FEEDBACK.c.paper_id == DIGEST_PAPERS.c.paper_id)
                & (FEEDBACK.c.subscriber_id == sent.c.subscriber_id)
                & (FEEDBACK.c.kind == FeedbackKind.less),
            )
        )
    ).scalar_one()
    return {
        "clicks": clicks,
        "digests_sent": int(total),
        "share_with_not_for_me": unwanted / total if total else 0.0,
    }
