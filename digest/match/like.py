"""`like:REF`: papers similar to one paper, by its most distinctive terms (MoreLikeThis).

The seed paper's words are weighed by tf-idf (title words count TITLE_WEIGHT times, the
document frequencies are the batch's, the seed counted in), the MAX_TERMS best become one
weighted query, and a paper matches when it scores at least MIN_SHARE_OF_BEST of the most
similar paper's score (and never less than MIN_SIMILARITY of what the seed itself would
score, so a batch with nothing alike yields nothing). The seed itself never matches.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from digest.match.query import Term
from digest.match.text import analyse, stem

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
TITLE_WEIGHT = 2.5  # the index's weight of a title word


class Doc(Protocol):
    """What `like:` reads of a paper."""

    @property
    def title(self) -> str: ...

    @property
    def abstract(self) -> str: ...


class Hits(Protocol):
    """What `like:` reads of a term's hits."""

    @property
    def docs(self) -> Ints: ...

    @property
    def scores(self) -> Floats: ...


class Batch(Protocol):
    """What `like:` needs of the index: its size, a paper by reference, a word's hits."""

    @property
    def size(self) -> int: ...

    def find(self, ref: str) -> tuple[Doc | None, int | None]: ...

    def term(self, term: Term) -> Hits: ...


MAX_TERMS = 25  # as Lucene's MoreLikeThis
MIN_SHARE_OF_BEST = 0.25  # of the most similar paper's score...
MIN_SIMILARITY = 0.05  # ... and of what the seed itself would score, at least
MAX_DOC_SHARE = 0.25  # words in more of the batch than this say nothing (when it is large)
MIN_DOC_FREQ = 3  # words in fewer papers (the seed counted) are the seed's own names
LARGE_BATCH = 50
# Function words, dropped whatever the batch (Lucene's English stop set, and a few more).
_STOP_WORDS = (
    "a an and are as at be but by for from has have if in into is it its no not of on or "
    "our such that the their then there these they this to was we were which will with "
    "can also both between than using based show paper propose results"
)
STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True)
class Seed:
    """A `like:` query: the seed's words (one folded form per stem) and their weights."""

    words: tuple[str, ...]
    weights: tuple[float, ...]


def _counts(paper: Doc) -> tuple[dict[str, float], dict[str, str]]:
    """Weighted counts of the seed's stems (title words TITLE_WEIGHT), and a word per stem."""
    counts: dict[str, float] = defaultdict(float)
    form: dict[str, str] = {}
    for text, weight in ((paper.title, TITLE_WEIGHT), (paper.abstract, 1.0)):
        for word in analyse(text)[0]:
            short = len(word) < 3 and word.isascii()  # CJK words are pairs of characters
            if short or word in STOP or not any(ch.isalpha() for ch in word):
                continue
            key = stem(word)
            counts[key] += weight
            form.setdefault(key, word)
    return counts, form


def seed_query(index: Batch, paper: Doc) -> Seed:
    """The seed's MAX_TERMS most distinctive words, weighed by tf-idf (the best is 1)."""
    counts, form = _counts(paper)
    size = index.size + 1
    scored: list[tuple[float, str]] = []
    for key, tf in counts.items():
        df = 1 + len(index.term(Term("", (form[key],))).docs)
        if index.size >= LARGE_BATCH and not MIN_DOC_FREQ <= df <= MAX_DOC_SHARE * size:
            continue
        scored.append((tf * math.log(1 + size / df), key))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    best = scored[:MAX_TERMS]
    top = best[0][0] if best else 1.0
    return Seed(tuple(form[key] for _, key in best), tuple(score / top for score, _ in best))


def likeness(index: Batch, ref: str) -> tuple[Floats, float]:
    """How like the paper `ref` names each paper of the batch is (0 for the seed itself),
    and what the seed itself would score (0 if no such paper)."""
    paper, position = index.find(ref)
    if paper is None:
        return np.zeros(index.size), 0.0
    seed = seed_query(index, paper)
    total = np.zeros(index.size)
    ceiling = 0.0
    for word, weight in zip(seed.words, seed.weights, strict=True):
        hits = index.term(Term("", (word,)))
        total[hits.docs] += weight * hits.scores
        # What the seed would score: this word's best score in the batch stands for it.
        ceiling += weight * float(hits.scores.max(initial=0.0))
    if position is not None:
        total[position] = 0.0
    return total, ceiling


def similar(index: Batch, ref: str) -> tuple[Ints, Floats]:
    """The papers of the batch similar to the paper `ref` names (positions), and scores."""
    total, ceiling = likeness(index, ref)
    if ceiling <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    floor = max(MIN_SHARE_OF_BEST * float(total.max(initial=0.0)), MIN_SIMILARITY * ceiling)
    docs = np.flatnonzero((total >= floor) & (total > 0))
    return docs, total[docs]
