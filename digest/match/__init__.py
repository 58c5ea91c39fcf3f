"""Matching papers against interests: the seam delivery uses, and the engine behind it.

Delivery only sees `Matcher.match(papers, interests) -> {canonical interest: [Hit]}`:
each distinct interest is evaluated once over the batch; fanning out to subscribers is
the caller's job (or `engine.fan_out`'s, for a whole population at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from digest.match.engine import Hit, InterestMatcher
from digest.match.index import PaperDoc
from digest.match.query import InterestError, Query, Term, parse

__all__ = [
    "Hit",
    "InterestError",
    "InterestMatcher",
    "Matcher",
    "PaperDoc",
    "Query",
    "Term",
    "parse",
]


class Matcher(Protocol):
    """Evaluates distinct interests over a batch of papers."""

    def match(self, papers: Sequence[PaperDoc], interests: Iterable[str]) -> dict[str, list[Hit]]:
        """Map each interest's canonical form to the papers it matches, best first."""
        ...
