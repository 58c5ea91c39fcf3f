"""Acronyms and their long forms: a curated table, and pairs learned from the papers.

Learned pairs come from "long form (ACRONYM)" in the papers themselves; an acronym that
the papers also write as an ordinary word ("cats", "Cats") is not learned."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from digest.match.text import analyse, prepare

# A dictionary from the acronym (folded, singular) to its long forms, each a tuple of
# folded words.
Table = dict[str, frozenset[tuple[str, ...]]]

_DEFINITION = re.compile(r"\(\s*([A-Za-z0-9][A-Za-z0-9-]{0,10})\s*\)")
_STOP = frozenset(
    [
        "of",
        "for",
        "and",
        "the",
        "a",
        "an",
        "to",
        "in",
        "on",
        "with",
        "by",
        "from",
        "via",
        "at",
        "as",
    ]
)
_MAX_EXTRA_WORDS = 2


# An ordinary word: lower case, or capitalised at most at its first letter ("Cats sleep").
_ORDINARY_WORD = re.compile(r"(?<![\w-])[A-Za-z][a-z]{2,}(?![\w-])")


def long_form(text: str) -> tuple[str, ...]:
    """The folded words of a long form."""
    return tuple(analyse(text)[0])


@lru_cache(maxsize=1)
def curated() -> Table:
    """The table shipped with the package (digest/match/acronyms.tsv)."""
    table: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    text = resources.files("digest.match").joinpath("acronyms.tsv").read_text("utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        acronym, sep, expansion = line.partition("\t")
        if not sep or not expansion.strip():
            raise ValueError(f"acronyms.tsv line {number}: expected ACRONYM<TAB>long form")
        table[analyse(acronym)[0][0]].add(long_form(expansion))
    return {key: frozenset(value) for key, value in table.items()}


def _letters(acronym: str) -> list[str]:
    """Letter sequences an acronym may abbreviate: all its letters, or its capitals only."""
    base = acronym[:-1] if acronym.endswith("s") and acronym[-2:-1].isupper() else acronym
    base = base.replace("-", "")
    options = [base.casefold()]
    capitals = "".join(ch for ch in base if ch.isupper() or ch.isdigit()).casefold()
    if len(capitals) >= 2 and capitals != options[0]:
        options.append(capitals)
    return options


def _spell(letters: str, words: list[str]) -> tuple[str, ...] | None:
    """The shortest tail of `words` whose initials spell `letters` (stop words may be skipped)."""
    i, j = len(letters) - 1, len(words) - 1
    while i >= 0 and j >= 0 and len(words) - j <= len(letters) + _MAX_EXTRA_WORDS:
        word = words[j]
        if word and word[0] == letters[i]:
            i -= 1
        elif word not in _STOP or i == len(letters) - 1:
            return None
        j -= 1
    if i >= 0 or words[j + 1] in _STOP:
        return None
    return tuple(words[j + 1 :])


def definitions(text: str) -> Iterable[tuple[str, tuple[str, ...]]]:
    """(acronym, long-form words) for each "long form (ACRONYM)" in `text`."""
    prepared = prepare(text)
    for found in _DEFINITION.finditer(prepared):
        acronym = found.group(1)
        if sum(ch.isupper() for ch in acronym) < 2:
            continue
        before = analyse(prepared[max(0, found.start() - 200) : found.start()])[0]
        for letters in _letters(acronym):
            if len(letters) < 2:
                continue
            words = _spell(letters, before)
            if words:
                key = analyse(acronym)[0]
                if len(key) == 1:
                    yield key[0], tuple(words)
                break


def learn(texts: Iterable[str], base: Table | None = None) -> Table:
    """The curated table plus the pairs defined in `texts`; the curated entries win."""
    table = dict(curated() if base is None else base)
    learned: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    ordinary: set[str] = set()  # words the papers write as ordinary words
    for text in texts:
        ordinary.update(word.lower() for word in _ORDINARY_WORD.findall(text))
        if "(" in text:
            for acronym, words in definitions(text):
                # Short acronyms ("AT") would match ordinary words.
                if acronym not in table and len(acronym) >= 3 and acronym not in _STOP:
                    learned[acronym].add(words)
    table.update(
        (key, frozenset(value))
        for key, value in learned.items()
        if key not in ordinary and key + "s" not in ordinary  # "CATS" next to "cats"
    )
    return table
