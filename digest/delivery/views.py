"""Views: the chosen papers of a digest as its templates show them, with the digest's links."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from digest.config import Settings
from digest.delivery.planning import Choice, select_papers
from digest.mail.message import Rendered
from digest.mail.render import DigestView, PaperView, Renderer
from digest.match.engine import Matcher
from digest.models import PAPERS, SUBSCRIBERS
from digest.papers import hf_url, paper_date, paper_url, pdf_url
from digest.subscribers import interests_of
from digest.tokens import (
    DIGESTS,
    FEEDBACK,
    PREFERENCES,
    UNSUBSCRIBE,
    make_paper_tokens,
    make_tokens,
)

# A paper as shown for one interest and its matched terms.
ViewKey = tuple[int, str, tuple[str, ...], str]


def load_papers(conn: Connection, paper_ids: Iterable[int]) -> dict[int, Any]:
    """The stored rows of these papers, by id."""
    query = sa.select(PAPERS).where(PAPERS.c.id.in_(set(paper_ids)))
    return {row.id: row for row in conn.execute(query)}


class PaperCache:
    """Papers' rows, and their views, kept from one batch of digests to the next: a day's
    papers are in most batches. A paper changed since it was read (its `updated_at`) is
    read again, and the views made of it are dropped."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit  # papers kept; past it, the cache starts again
        self.rows: dict[int, Any] = {}
        self.stamps: dict[int, Any] = {}
        self.views: dict[ViewKey, PaperView] = {}

    def load(self, conn: Connection, paper_ids: Iterable[int]) -> dict[int, Any]:
        """The rows of these papers, by id, as `load_papers` reads them."""
        wanted = set(paper_ids)
        if not wanted:
            return {}
        if len(self.views) > 4 * self.limit:
            self.views.clear()
        stamp = sa.type_coerce(PAPERS.c.updated_at, sa.String)  # compared, not read as a time
        current: dict[int, Any] = dict(
            conn.execute(sa.select(PAPERS.c.id, stamp).where(PAPERS.c.id.in_(wanted))).all()
        )
        stale = [paper for paper, at in current.items() if self.stamps.get(paper) != at]
        if stale:
            if len(self.rows) + len(stale) > self.limit:
                self.rows.clear()
                self.stamps.clear()
                self.views.clear()
                stale = list(current)
            elif any(paper in self.stamps for paper in stale):
                self.views.clear()  # a changed paper: views are remade as needed
            self.rows.update(load_papers(conn, stale))
            self.stamps.update((paper, current[paper]) for paper in stale)
        return {paper: self.rows[paper] for paper in current if paper in self.rows}


def paper_views(
    choices: Iterable[Choice],
    papers: Mapping[int, Any],
    views: dict[ViewKey, PaperView] | None = None,
) -> list[PaperView]:
    """The papers of `choices` (their rows in `papers`), in order, as templates show them.

    `views` keeps the views made, by paper and interest, to reuse in the next digests.
    """
    made = {} if views is None else views
    out = []
    for c in choices:
        key = (c.paper_id, c.interest, c.terms, c.moved)
        view = made.get(key)
        if view is None:
            view = made[key] = paper_view(papers[c.paper_id], c)
        out.append(view)
    return out


def paper_view(row: Any, c: Choice) -> PaperView:
    """One stored paper, chosen for `c`'s interest, as a digest shows it."""
    return PaperView(
        title=row.title,
        abstract=row.abstract,
        url=paper_url(row),
        authors=tuple(row.authors),
        categories=tuple(row.categories),
        interest=c.interest,
        terms=c.terms,
        upvotes=row.upvotes,
        pdf_url=pdf_url(row),
        hf_url=hf_url(row),
        code_url=row.github_repo,
        published=paper_date(row),
        moved=c.moved,
    )


def digest_view(
    settings: Settings,
    subscriber: Any,
    period: str,
    choices: list[Choice],
    more_count: int,
    *,
    papers: Mapping[int, Any],
    subscribed: list[str],
    digest_id: int | None = None,
    views: dict[ViewKey, PaperView] | None = None,
) -> DigestView:
    """The template context of one subscriber's digest (`digest_id` links the full list).

    `papers` holds the chosen papers' rows, `subscribed` the subscriber's interest lines;
    `views` keeps the paper views made, for the next digests of a batch.
    """
    secret, base = settings.secret_key.get_secret_value(), settings.base_url.rstrip("/")
    more_link = bool(digest_id and more_count)
    purposes = [UNSUBSCRIBE, PREFERENCES, *([DIGESTS] if more_link else [])]
    tokens = make_tokens(secret, purposes, subscriber.id, subscriber.token_version)

    def link(purpose: str) -> str:
        return f"{base}/{purpose}/{tokens[purpose]}"

    feedback = make_paper_tokens(
        secret, subscriber.id, subscriber.token_version, [c.paper_id for c in choices]
    )
    return DigestView(
        email=subscriber.email,
        period=period,
        papers=paper_views(choices, papers, views),
        actions=[
            (
                f"{base}/{FEEDBACK}/{feedback[c.paper_id]}/more",
                f"{base}/{FEEDBACK}/{feedback[c.paper_id]}/less",
            )
            for c in choices
        ],
        interests=list(dict.fromkeys(c.interest for c in choices)),
        more_count=more_count,
        unsubscribe_url=link(UNSUBSCRIBE),
        preferences_url=link(PREFERENCES),
        more_url=f"{link(DIGESTS)}/{digest_id}" if more_link else "",
        subscribed=subscribed,
    )


def preview(
    engine: Engine, matcher: Matcher, renderer: Renderer, subscriber_id: int, now: datetime
) -> tuple[Rendered, int] | None:
    """Render the digest a subscriber would get now (nothing is stored); None if empty."""
    with engine.connect() as conn:
        selections = select_papers(conn, matcher, renderer.settings, now, only=subscriber_id)
        if not selections or not selections[0].papers:
            return None
        chosen = selections[0]
        subscriber = conn.execute(
            sa.select(SUBSCRIBERS).where(SUBSCRIBERS.c.id == subscriber_id)
        ).one()
        papers = load_papers(conn, (c.paper_id for c in chosen.papers))
        lines = interests_of(conn, subscriber_id)
    more = chosen.matched_count - len(chosen.papers)
    view = digest_view(
        renderer.settings,
        subscriber,
        chosen.period,
        chosen.papers,
        more,
        papers=papers,
        subscribed=lines,
    )
    return renderer.digest(view), len(chosen.papers)
