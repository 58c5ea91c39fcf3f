"""Where matched terms occur in a text, as the matcher sees them: for highlights and the why.

`spans` finds each term of a match (as `Hit.terms` names them) in the original text, with
the same folding the index uses: case, accents, dashes and LaTeX do not matter, bare
words match their stems, quoted words match exactly, phrases match as phrases, and an
acronym matches its long forms (and a long form its acronym).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

from digest.match.acronyms import curated
from digest.match.query import FIELDS
from digest.match.text import _word, stem

_RAW_WORD = re.compile(r"[^\W_]+")
# Fields whose terms are found in running text (author and category terms are not).
TEXT_FIELDS = ("", "title", "abstract")

Token = tuple[int, int, str, str]  # start, end, folded word, its stem


@lru_cache(maxsize=4096)
def tokens(text: str) -> tuple[Token, ...]:
    """The words of `text` with their places, folded and stemmed as the index does."""
    found = []
    for m in _RAW_WORD.finditer(text):
        folded = _word(m.group(0))
        if folded:
            found.append((m.start(), m.end(), folded, stem(folded)))
    return tuple(found)


def parse_term(term: str) -> tuple[str, tuple[str, ...], bool]:
    """(field, words, exact) of a term as `Hit.terms` names it ('title:"a b"', 'llm')."""
    field, sep, rest = term.partition(":")
    if not sep or field not in FIELDS:
        field, rest = "", term
    if rest.startswith('"') and rest.endswith('"') and len(rest) > 1:
        return field, tuple(w for w in rest[1:-1].split() if w), True
    return field, tuple(w for w in re.split(r"[\s-]+", rest) if w), False


@lru_cache(maxsize=1)
def _acronyms() -> tuple[dict[str, frozenset[tuple[str, ...]]], dict[tuple[str, ...], set[str]]]:
    table = curated()
    reverse: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for acronym, forms in table.items():
        for form in forms:
            reverse[form].add(acronym)
    return table, dict(reverse)


@lru_cache(maxsize=8192)
def patterns(term: str) -> tuple[tuple[tuple[str, ...], bool], ...]:
    """What to look for in text for one term: (words, compare folded words exactly)."""
    field, words, exact = parse_term(term)
    if field not in TEXT_FIELDS or not words:
        return ()
    folded = tuple(_word(w) for w in words)
    found: list[tuple[tuple[str, ...], bool]] = []
    found.append((folded, True) if exact else (tuple(stem(w) for w in folded), False))
    table, reverse = _acronyms()
    if not exact and len(folded) == 1:
        found += [(form, False) for form in table.get(folded[0], ())]
    stems = tuple(stem(w) for w in folded)
    found += [((acronym,), True) for acronym in reverse.get(stems, ())]
    return tuple(found)


def spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """The character ranges of `text` where any of `terms` occurs, in order, merged."""
    wanted = [p for term in terms for p in patterns(term)]
    if not wanted or not text:
        return []
    words = tokens(text)
    hits: list[tuple[int, int]] = []
    for sequence, exact in wanted:
        size = len(sequence)
        for i in range(len(words) - size + 1):
            window = words[i : i + size]
            if all((w[2] if exact else w[3]) == s for w, s in zip(window, sequence, strict=True)):
                hits.append((window[0][0], window[-1][1]))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(hits):
        if merged and start <= merged[-1][1] + 1 and text[merged[-1][1] : start].strip() == "":
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
