"""A stored paper row as the rest of digest reads it: the matcher's document and its links.

Planning, search, explain and the sign-up preview all read papers through `paper_doc`
(with `DOC_COLUMNS` selected), so an interest line matches the same papers wherever it
is evaluated; the email, the full list and the feed link a paper through `paper_url`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from digest.match.index import PaperDoc
from digest.match.query import InterestError, Node, Not, Term, parse
from digest.models import PAPERS

# What `paper_doc` reads from a paper row.
DOC_COLUMNS = (
    PAPERS.c.id,
    PAPERS.c.title,
    PAPERS.c.abstract,
    PAPERS.c.upvotes,
    PAPERS.c.authors,
    PAPERS.c.categories,
    PAPERS.c.arxiv_id,
)
_UNSAFE = re.compile(r"[\x00-\x20\x7f\u2028\u2029]")


def paper_doc(row: Any, paper_id: int | None = None) -> PaperDoc:
    """A paper (a row with DOC_COLUMNS, or a PaperIn given its `paper_id`) as matching reads it."""
    return PaperDoc(
        id=row.id if paper_id is None else paper_id,
        title=row.title,
        abstract=row.abstract or "",
        upvotes=row.upvotes,
        authors=tuple(row.authors or ()),
        categories=tuple(row.categories or ()),
        arxiv_id=_arxiv_id(getattr(row, "arxiv_id", None)),
    )


_ARXIV_ID = re.compile(r"(?:arxiv:)?(.+?)(?:v\d+)?", re.IGNORECASE)


def _arxiv_id(value: str | None) -> str | None:
    """An arXiv id as `like:` names it: no "arXiv:" prefix, no version, lower case."""
    found = _ARXIV_ID.fullmatch(value.strip()) if value else None
    return found[1].casefold() if found else None


def seed_papers(conn: Connection, lines: Iterable[str]) -> dict[str, PaperDoc]:
    """The stored papers that the `like:` terms of `lines` name, by the reference written."""
    refs = {term.words[0] for line in lines if "like:" in line for term in _like_terms(line)}
    if not refs:
        return {}
    found: dict[str, PaperDoc] = {}
    ordered = sorted(refs)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        numbers = [int(ref) for ref in chunk if ref.isdigit()]
        named = [ref for ref in chunk if not ref.isdigit()]
        wanted = sa.or_(PAPERS.c.id.in_(numbers), PAPERS.c.arxiv_id.in_(named))
        for row in conn.execute(sa.select(*DOC_COLUMNS).where(wanted)):
            doc = paper_doc(row)
            found[str(doc.id)] = doc
            if doc.arxiv_id:
                found[doc.arxiv_id.casefold()] = doc
    return {ref: found[ref] for ref in refs if ref in found}


def _like_terms(line: str) -> list[Term]:
    try:
        query = parse(line)
    except InterestError:
        return []
    return [term for term in _all_terms(query.root) if term.field == "like"]


def _all_terms(node: Node) -> list[Term]:
    """Every term of a tree, exclusions included (a `-like:` needs its seed too)."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return _all_terms(node.child)
    return [term for child in node.children for term in _all_terms(child)]


def paper_date(row: Any) -> date | None:
    """The paper's own date, when its source gave one (never the day digest first saw it)."""
    return row.published_at.date() if row.published_at else None


def web_url(url: str | None) -> str | None:
    """`url` if it is an http(s) URL safe to put in a link, else None."""
    if not url:
        return None
    url = url.strip()
    if not url.lower().startswith(("https://", "http://")) or _UNSAFE.search(url):
        return None
    return url


def paper_url(row: Any) -> str | None:
    """The paper's page: its arXiv abstract page when it has an arXiv id, else its own URL."""
    return f"https://arxiv.org/abs/{row.arxiv_id}" if row.arxiv_id else row.url


def pdf_url(row: Any) -> str | None:
    """The paper's PDF: the one the source gave, else arXiv's."""
    return row.pdf_url or (f"https://arxiv.org/pdf/{row.arxiv_id}" if row.arxiv_id else None)


def hf_url(row: Any) -> str | None:
    """The paper's Hugging Face page, when it came from HF Daily Papers (or has upvotes)."""
    from_hf = row.upvotes is not None or any("hf" in s or "hugging" in s for s in row.sources)
    return f"https://huggingface.co/papers/{row.arxiv_id}" if row.arxiv_id and from_hf else None
