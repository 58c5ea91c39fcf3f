"""Where matched terms occur in a text, as the matcher sees them: for highlights and the why.

`spans` finds each term of a match (as `Hit.terms` names them) in the original text, with
the same folding the index uses: case, accents, dashes and LaTeX do not matter, bare
words match their stems, quoted words match exactly, phrases match as phrases, and an
acronym matches its long forms (and a long form its acronym).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from digest.match.acronyms import curated
from digest.match.index import (
    WINDOW,
    Family,
    Pattern,
    acronym_classes,
    family_patterns,
    member_of,
    own_patterns,
    phrase_variants,
    windowed,
)
from digest.match.query import FIELDS
from digest.match.text import _CJK, CJK_LETTERS, PHRASE_STOP, _word, stem

_RAW_WORD = re.compile(r"[A-Za-z]{1,2}(?:\+\+|#)(?![\w+#])|[^\W_]+")
# Fields whose terms are found in running text (author and category terms are not).
TEXT_FIELDS = ("", "title", "abstract")

Token = tuple[int, int, str, str]  # start, end, folded word, its stem


@lru_cache(maxsize=4096)
def tokens(text: str) -> tuple[Token, ...]:
    """The words of `text` with their places, folded and stemmed as the index does."""
    found = []
    for m in _RAW_WORD.finditer(text):
        for start, end in _pieces(m.group(0), m.start()):
            folded = _word(text[start:end])
            if folded:
                found.append((start, end, folded, stem(folded)))
    return tuple(found)


def _pieces(word: str, offset: int) -> list[tuple[int, int]]:
    """Where the words of one raw word are: itself, or its CJK runs as pairs of characters."""
    if not _CJK.search(word):
        return [(offset, offset + len(word))]
    found: list[tuple[int, int]] = []
    for run in re.finditer(f"[{CJK_LETTERS}]+|[^{CJK_LETTERS}]+", word):
        start, end = offset + run.start(), offset + run.end()
        if _CJK.fullmatch(run.group(0)) and end - start > 1:
            found.extend((i, i + 2) for i in range(start, end - 1))
        else:
            found.append((start, end))
    return found


def parse_term(term: str) -> tuple[str, tuple[str, ...], bool]:
    """(field, words, exact) of a term as `Hit.terms` names it ('title:"a b"', 'llm')."""
    field, sep, rest = term.partition(":")
    if not sep or field not in FIELDS:
        field, rest = "", term
    if rest.startswith('"') and rest.endswith('"') and len(rest) > 1:
        return field, tuple(w for w in rest[1:-1].split() if w), True
    return field, tuple(w for w in re.split(r"[\s-]+", rest) if w), False


@lru_cache(maxsize=1)
def _families() -> dict[object, Family]:
    return acronym_classes(curated())


@lru_cache(maxsize=8192)
def patterns(term: str) -> tuple[Pattern, ...]:
    """What to look for in text for one term: (words, compared by stem?), as the index does."""
    field, words, exact = parse_term(term)
    if field not in TEXT_FIELDS or not words:
        return ()
    folded = tuple(w for word in words for w in _word_parts(word))
    families = _families()
    family = member_of(families, folded)
    found = own_patterns(folded, not exact)
    if family is not None:
        found |= family_patterns(family, curated(), not exact)
    elif not exact and len(folded) > 1:
        for variant in phrase_variants(folded, families):
            found |= own_patterns(variant, True)
    return tuple(sorted(found))


def _word_parts(word: str) -> list[str]:
    """A word of a term as the index folds it (a CJK run as pairs of characters)."""
    folded = _word(word)
    if not _CJK.search(folded):
        return [folded]
    return [folded[start:end] for start, end in _pieces(folded, 0)]


@dataclass(frozen=True)
class _Layout:
    """A text's words, those a loose phrase keeps, and where each word and stem is."""

    words: tuple[Token, ...]
    loose: tuple[Token, ...]
    exact: dict[str, list[int]]  # folded word -> its places in `words`
    stems: dict[str, list[int]]  # stem -> its places in `words`
    loose_stems: dict[str, list[int]]  # stem -> its places in `loose`


def _places(words: tuple[Token, ...], key: int) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for i, word in enumerate(words):
        found.setdefault(word[3] if key == 3 else word[2], []).append(i)
    return found


@lru_cache(maxsize=4096)
def _layout(text: str) -> _Layout:
    words = tokens(text)
    loose = tuple(w for w in words if w[2] not in PHRASE_STOP)
    return _Layout(words, loose, _places(words, 2), _places(words, 3), _places(loose, 3))


def _near(
    words: tuple[Token, ...], places: dict[str, list[int]], stems: tuple[str, ...]
) -> list[tuple[int, int]]:
    """Where all `stems` occur within the index's WINDOW of each other: the whole stretch."""
    reach = len(stems) - 1 + WINDOW
    found = []
    others = [places.get(s, []) for s in stems[1:]]
    for i in places.get(stems[0], ()):
        # For each other stem, its nearest occurrence after this one (else before it).
        chosen = [i]
        for where in others:
            low = bisect_left(where, i - reach)
            high = bisect_right(where, i + reach)
            if low == high:
                break
            chosen.append(min(where[low:high], key=lambda j: (j < i, abs(j - i))))
        else:
            found.append((words[min(chosen)][0], words[max(chosen)][1]))
    return found


def spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """The character ranges of `text` where any of `terms` occurs, in order, merged."""
    wanted = [p for term in terms for p in patterns(term)]
    if not wanted or not text:
        return []
    layout = _layout(text)
    hits: list[tuple[int, int]] = []
    for sequence, stemmed in wanted:
        if stemmed and len(sequence) > 1:
            # A loose phrase skips PHRASE_STOP words, in the text and in the phrase.
            sequence = tuple(s for s in sequence if s not in PHRASE_STOP) or sequence[:1]
        if stemmed and windowed(sequence):
            hits.extend(_near(layout.loose, layout.loose_stems, sequence))
            continue
        if stemmed and len(sequence) > 1:
            among, places, key = layout.loose, layout.loose_stems, 3
        else:
            among = layout.words
            places, key = (layout.stems, 3) if stemmed else (layout.exact, 2)
        size = len(sequence)
        for i in places.get(sequence[0], ()):
            if i + size <= len(among) and all(
                among[i + k][key] == sequence[k] for k in range(1, size)
            ):
                hits.append((among[i][0], among[i + size - 1][1]))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(hits):
        if merged and start <= merged[-1][1] + 1 and text[merged[-1][1] : start].strip() == "":
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
