"""Matching papers against interests: the seam delivery uses, and the simple engine.

Delivery only sees `Matcher.match(papers, interests) -> {canonical interest: [Hit]}`:
each distinct interest is evaluated once over the batch; fanning out to subscribers is
the caller's job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from digest.match.query import InterestError, Query, Term, parse
from digest.match.text import tokens

__all__ = ["Hit", "InterestError", "Matcher", "PaperDoc", "SimpleMatcher", "parse"]

TITLE_WEIGHT = 3.0


@dataclass(frozen=True)
class PaperDoc:
    """The fields of a paper that matching reads."""

    id: int
    title: str
    abstract: str
    upvotes: int | None = None


@dataclass(frozen=True)
class Hit:
    """A paper that matched an interest, with its score and the terms that matched."""

    paper_id: int
    score: float
    terms: tuple[str, ...] = field(default=())


class Matcher(Protocol):
    """Evaluates distinct interests over a batch of papers."""

    def match(self, papers: Sequence[PaperDoc], interests: Iterable[str]) -> dict[str, list[Hit]]:
        """Map each interest's canonical form to the papers it matches, best first."""
        ...


class _Field:
    """The token stream of one field of every paper, with a word -> papers index."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.docs = [tokens(text) for text in texts]
        self.postings: dict[str, set[int]] = defaultdict(set)
        for index, words in enumerate(self.docs):
            for word in words:
                self.postings[word].add(index)

    def count(self, index: int, term: Term) -> int:
        """How many times `term` occurs in document `index` (whole words only)."""
        words, n = self.docs[index], len(term.words)
        if n == 1:
            return words.count(term.words[0])
        return sum(1 for i in range(len(words) - n + 1) if tuple(words[i : i + n]) == term.words)

    def candidates(self, term: Term) -> set[int]:
        """Documents holding every word of `term` (phrases are checked later)."""
        sets = [self.postings.get(word, set()) for word in term.words]
        return set.intersection(*sets) if sets else set()


class SimpleMatcher:
    """Case-insensitive whole-word and phrase matching over title and abstract."""

    def match(self, papers: Sequence[PaperDoc], interests: Iterable[str]) -> dict[str, list[Hit]]:
        """Evaluate each distinct interest once; score = 3 x title hits + abstract hits."""
        title = _Field([paper.title for paper in papers])
        abstract = _Field([paper.abstract for paper in papers])
        results: dict[str, list[Hit]] = {}
        for query in {parse(line) for line in interests}:
            results[query.canonical] = self._evaluate(query, papers, title, abstract)
        return results

    @staticmethod
    def _evaluate(
        query: Query, papers: Sequence[PaperDoc], title: _Field, abstract: _Field
    ) -> list[Hit]:
        candidates: set[int] | None = None
        for term in query.terms:
            found = title.candidates(term) | abstract.candidates(term)
            candidates = found if candidates is None else candidates & found
        hits = []
        for index in candidates or ():
            score = 0.0
            for term in query.terms:
                counts = TITLE_WEIGHT * title.count(index, term) + abstract.count(index, term)
                if not counts:
                    break
                score += counts
            else:
                terms = tuple(str(term) for term in query.terms)
                hits.append(Hit(papers[index].id, score, terms))
        hits.sort(key=lambda hit: (-hit.score, hit.paper_id))
        return hits
