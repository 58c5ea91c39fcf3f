"""Search and explain over stored papers (or a JSONL file): what a line matches, and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from digest.match.engine import matched_terms, rank
from digest.match.highlight import spans
from digest.match.index import Index, PaperDoc
from digest.match.query import parse
from digest.models import PAPERS
from digest.papers import DOC_COLUMNS, paper_doc
from digest.sources.ingest import IngestReport, read_jsonl
from digest.subscribers import find, interests_of


@dataclass(frozen=True)
class Found:
    """A paper an interest matched: its score and the terms that matched."""

    paper: PaperDoc
    score: float
    matched: tuple[str, ...]

    def forms(self) -> dict[str, tuple[str, ...]]:
        """For each matched term, the words of the title and abstract that matched it as
        written there: its other forms, its acronym or long form, its joined spelling."""
        return surface_forms(self.paper, self.matched)


def surface_forms(paper: PaperDoc, terms: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """For each term, the distinct spellings of it in the paper's title and abstract."""
    forms: dict[str, tuple[str, ...]] = {}
    for term in terms:
        seen: dict[str, None] = {}
        for text in (paper.title, paper.abstract):
            for start, end in spans(text, [term]):
                seen.setdefault(" ".join(text[start:end].split()), None)
        forms[term] = tuple(seen)
    return forms


def stored_papers(conn: Connection) -> list[PaperDoc]:
    """Every stored paper, as matching reads it."""
    return [paper_doc(row) for row in conn.execute(sa.select(*DOC_COLUMNS).order_by(PAPERS.c.id))]


def file_papers(path: Path) -> tuple[list[PaperDoc], list[str]]:
    """The papers of a JSONL file (ids are line numbers among valid lines) and its bad lines."""
    report = IngestReport()
    docs = [
        paper_doc(paper, number) for number, paper in enumerate(read_jsonl(path, report), start=1)
    ]
    return docs, report.errors


def search(
    papers: Sequence[PaperDoc], line: str, limit: int | None = None, *, index: Index | None = None
) -> list[Found]:
    """One interest line over `papers` (or their prebuilt index), best first; InterestError."""
    query = parse(line)
    index = index if index is not None else Index(papers)
    ranked = rank(index, query)
    stop = len(ranked.docs) if limit is None else limit
    return [
        Found(papers[doc], float(score), matched_terms(index, ranked, doc))
        for doc, score in zip(
            ranked.docs[:stop].tolist(), ranked.scores[:stop].tolist(), strict=True
        )
    ]


@dataclass(frozen=True)
class LineVerdict:
    """How one interest line fares against one paper."""

    line: str
    canonical: str
    matches: bool
    score: float
    matched: tuple[str, ...]
    missing: tuple[str, ...]


def explain(engine: Engine, email: str, paper_id: int) -> tuple[PaperDoc, list[LineVerdict]]:
    """Which of a subscriber's interest lines match a stored paper, and why (or LookupError)."""
    with engine.connect() as conn:
        subscriber = find(conn, email)
        if subscriber is None:
            raise LookupError(f"no subscriber {email}")
        papers = stored_papers(conn)
        lines = interests_of(conn, subscriber.id)
    # The whole store is the batch, as `digest search` sees it: the same words weigh the same.
    position = next((i for i, paper in enumerate(papers) if paper.id == paper_id), None)
    if position is None:
        raise LookupError(f"no paper with id {paper_id}")
    paper = papers[position]
    index = Index(papers)
    verdicts = []
    for line in lines:
        query = parse(line)
        ranked = rank(index, query)
        present = {t.shown for t in query.terms if index.term(t).bits >> position & 1}
        found = np.flatnonzero(ranked.docs == position)
        verdicts.append(
            LineVerdict(
                line=line,
                canonical=query.canonical,
                matches=bool(ranked.bits >> position & 1),
                score=float(ranked.scores[found[0]]) if len(found) else 0.0,
                matched=tuple(t.shown for t in query.terms if t.shown in present),
                missing=tuple(t.shown for t in query.terms if t.shown not in present),
            )
        )
    return paper, verdicts
