"""The interest line: words and "quoted phrases", all of which must appear."""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.match.text import tokens

_TERM = re.compile(r'"([^"]*)"|(\S+)')
MAX_INTEREST_LENGTH = 300


class InterestError(ValueError):
    """An interest line that cannot be used; the message says what and where."""

    def __init__(self, line: str, message: str, column: int | None = None) -> None:
        where = f" (at column {column + 1})" if column is not None else ""
        super().__init__(f"{message}{where}: {line!r}")
        self.line = line
        self.column = column


@dataclass(frozen=True, order=True)
class Term:
    """One word or phrase: the folded words that must appear consecutively."""

    words: tuple[str, ...]

    @property
    def is_phrase(self) -> bool:
        """True when the term has more than one word."""
        return len(self.words) > 1

    def __str__(self) -> str:
        text = " ".join(self.words)
        return f'"{text}"' if self.is_phrase else text


@dataclass(frozen=True)
class Query:
    """A parsed interest line: every term must match (AND)."""

    terms: tuple[Term, ...]

    @property
    def canonical(self) -> str:
        """A stable text form; lines that mean the same share it."""
        return " ".join(str(term) for term in self.terms)


def parse(line: str) -> Query:
    """Parse an interest line, or raise InterestError pointing at the problem."""
    text = line.strip()
    if not text:
        raise InterestError(line, "an interest cannot be empty")
    if len(text) > MAX_INTEREST_LENGTH:
        raise InterestError(line, f"an interest is at most {MAX_INTEREST_LENGTH} characters")
    if text.count('"') % 2:
        raise InterestError(line, "unbalanced quote", line.rfind('"'))
    terms: set[Term] = set()
    for found in _TERM.finditer(line):
        raw = found.group(1) if found.group(1) is not None else found.group(2)
        words = tuple(tokens(raw))
        if not words:
            raise InterestError(line, f"{found.group(0)!r} has no letters or digits", found.start())
        # A bare hyphenated word ("in-context") becomes a phrase of its parts.
        terms.add(Term(words))
    return Query(tuple(sorted(terms)))
