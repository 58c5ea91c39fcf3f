"""Text normalisation shared by indexing and queries: NFKC, casefold, word tokens."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Unicode NFKC plus casefold, so that visually equal text compares equal."""
    return unicodedata.normalize("NFKC", text).casefold()


def tokens(text: str) -> list[str]:
    """The words of `text`, folded; punctuation and dashes separate words."""
    return _WORD.findall(fold(text))


def normalise_title(title: str) -> str:
    """A title reduced to its words, for duplicate detection."""
    return " ".join(tokens(title))
