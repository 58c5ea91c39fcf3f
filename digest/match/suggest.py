"""Related terms for an interest line, offered as one-click additions (never added silently).

Two kinds: the other members of an acronym family (they already match the same papers;
shown so the reader knows), and words or word pairs that are much more common in the
papers the line matches than in the whole batch (significant terms, as Elasticsearch's
`significant_terms` scores them: foreground rate x log of its ratio to the background).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from digest.match.engine import rank
from digest.match.index import Index, Ints, loose_key
from digest.match.like import STOP
from digest.match.query import Query, Term
from digest.match.text import FUNCTION_WORDS, PHRASE_STOP

MAX_FOREGROUND = 200  # the best matches stand for the line
MIN_SHARE = 0.15  # a related term occurs in at least this share of them
MIN_LIFT = 4.0  # ... and at least this many times more often than in the batch
MIN_COUNT = 3  # ... and in three papers at least
MIN_BATCH = 100  # fewer papers than this say too little about what is common
_SKIP = STOP | FUNCTION_WORDS | PHRASE_STOP


@dataclass(frozen=True)
class Related:
    """A term to offer: the text to add as a line, and why it is offered."""

    text: str
    reason: str
    same_papers: bool = False


def family_terms(index: Index, query: Query) -> list[Related]:
    """The acronyms and long forms of the line's terms (they match the same papers)."""
    found: list[Related] = []
    for term in query.terms:
        if term.field not in ("", "title", "abstract"):
            continue
        family = index.family(term.words)
        for words in sorted(family or ()):
            if loose_key(words) == loose_key(term.words):
                continue
            acronym = len(words) == 1 and words[0] in index.acronyms
            text = words[0].upper() if acronym else " ".join(words)
            shown = term.shown.upper() if term.words[0] in index.acronyms else term.shown
            reason = f"the acronym of {shown}" if acronym else f"the long form of {shown}"
            found.append(Related(text, reason, same_papers=True))
    return found


Key = tuple[str, ...]  # a stem, or two adjacent stems


def _doc_keys(index: Index, doc: int) -> dict[Key, str]:
    """The stems and adjacent pairs of stems that paper `doc` holds, each with its first
    spelling (the title's words, then the abstract's)."""
    found: dict[Key, str] = {}
    for name in ("title", "abstract"):
        field = index.fields[name]
        words = field.words()
        stems = [words[t] for t in field.stem_sequences[doc]]
        exact = [words[t] for t in field.sequences[doc]]
        for i, stem in enumerate(stems):
            if exact[i] in _SKIP or len(exact[i]) < 3 or not exact[i].isalpha():
                continue
            found.setdefault((stem,), exact[i])
            if i + 1 < len(stems) and exact[i + 1] not in _SKIP and exact[i + 1].isalpha():
                found.setdefault((stem, stems[i + 1]), f"{exact[i]} {exact[i + 1]}")
    return found


class Keys:
    """Each paper's keys (stems and adjacent pairs of stems) over one batch, as numbers, and
    how many papers of the batch hold each: found once, for every line asked about."""

    def __init__(self, index: Index) -> None:
        self.index = index
        ids: dict[Key, int] = {}
        spellings: dict[str, int] = {}
        self._docs: list[tuple[Ints, Ints]] = []  # per paper: its keys, first met first,
        for doc in range(index.size):  # and the spelling each is met with first
            found = _doc_keys(index, doc)
            numbers = [ids.setdefault(key, len(ids)) for key in found]
            spelled = [spellings.setdefault(text, len(spellings)) for text in found.values()]
            self._docs.append((np.array(numbers, dtype=np.int64), np.array(spelled, np.int64)))
        self.keys = list(ids)
        self.texts = list(spellings)
        every = [keys for keys, _ in self._docs]
        held = np.concatenate(every) if every else np.zeros(0, dtype=np.int64)
        self.papers: Ints = np.bincount(held, minlength=len(ids))  # papers holding each key
        self._holds: dict[int, bool] = {}

    def counts(self, docs: list[int], least: int) -> tuple[Ints, Ints, Ints]:
        """Each key that `least` of `docs` hold at least (its number), how many of them
        hold it, and the number of its spelling met first in `docs` order."""
        if not docs:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        keys = np.concatenate([self._docs[doc][0] for doc in docs])
        texts = np.concatenate([self._docs[doc][1] for doc in docs])
        held = np.bincount(keys, minlength=len(self.keys))
        enough = held >= least
        wanted = enough[keys]
        numbers, first = np.unique(keys[wanted], return_index=True)
        return numbers, held[numbers], texts[wanted][first]

    def holds(self, number: int, term: Term) -> bool:
        """Whether `term` (the key's own words, bare) matches every paper holding key
        `number`: when its patterns include the key's stems in every text field."""
        known = self._holds.get(number)
        if known is None:
            pattern = (self.keys[number], True)
            fields = self.index.fields.values()
            known = self._holds[number] = all(
                pattern in self.index.patterns(term, f) for f in fields
            )
        return known


def _score(share: float, background: int, size: int) -> tuple[float, float]:
    """(lift, score) of a key held by `share` of the matches and `background` papers."""
    lift = share / max(background / size, 1e-9)
    return lift, share * math.log(lift)


def _choose(scored: list[tuple[float, str, int]], limit: int) -> list[tuple[float, Related]]:
    """The best `limit` terms, none inside another (scored: score, text, count)."""
    chosen: list[tuple[float, Related]] = []
    for score, text, count in sorted(scored, key=lambda item: (-item[0], item[1])):
        if any(text in other.text or other.text in text for _, other in chosen):
            continue
        chosen.append((score, Related(text, f"in {count} of the papers matched")))
        if len(chosen) == limit:
            break
    return chosen


# A candidate: (-best score possible, text, key, papers matched), ordered as the terms are
# ranked (best score first, then by text).
Candidate = tuple[float, str, int, int]


def _candidates(keys: Keys, query: Query, docs: list[int]) -> list[Candidate]:
    """The keys common enough in `docs`, not the line's own words, as a heap.

    A key's best score is its score if no papers but those holding it matched its words:
    more papers give a larger background, so a lower lift and a lower score. (The fewest
    papers differ by one at least, so the lower score is lower in floating point too.)
    """
    index = keys.index
    # Fewer papers than this cannot be MIN_SHARE of them (one less, for rounding); the
    # exact test follows.
    least = max(MIN_COUNT, int(MIN_SHARE * len(docs)) - 1)
    numbers, counts, texts = keys.counts(docs, least)
    common = (counts / len(docs) >= MIN_SHARE) & (counts >= MIN_COUNT)
    # Words of the line, of its acronyms and of their long forms say nothing new.
    own = {stem for term in query.terms for stem in loose_key(term.words)}
    for term in query.terms:
        own |= {stem for words in index.family(term.words) or () for stem in loose_key(words)}
    found: list[Candidate] = []
    for number, count, text in zip(
        numbers[common].tolist(), counts[common].tolist(), texts[common].tolist(), strict=True
    ):
        if set(keys.keys[number]) <= own:
            continue
        fewest = max(int(keys.papers[number]), 1)
        bound = _score(count / len(docs), fewest, index.size)[1]
        found.append((-bound, keys.texts[text], number, count))
    heapq.heapify(found)
    return found


def significant_terms(
    index: Index, query: Query, limit: int = 5, keys: Keys | None = None
) -> list[Related]:
    """Words and word pairs far more common in the line's matches than in the batch
    (`keys`: the batch's, kept from an earlier line)."""
    ranked = rank(index, query, keep=MAX_FOREGROUND)
    docs = ranked.docs.tolist()
    if len(docs) < MIN_COUNT or index.size < max(MIN_BATCH, 4 * len(docs)):
        return []
    keys = keys if keys is not None and keys.index is index else Keys(index)
    # A term's background costs a search of the batch: terms are searched best bound
    # first, and one that would rank after the last chosen even with its best score is
    # not searched, unless the chosen change so that it could rank before.
    pending = _candidates(keys, query, docs)
    skipped: list[Candidate] = []
    scored: list[tuple[float, str, int]] = []
    chosen: list[tuple[float, Related]] = []
    last: tuple[float, str] | None = None  # the last chosen as ranked, once `limit` are
    while pending:
        candidate = heapq.heappop(pending)
        _, text, number, count = candidate
        term = Term("", tuple(text.split()))
        if last is not None and candidate[:2] > last and keys.holds(number, term):
            skipped.append(candidate)
            continue
        lift, score = _score(count / len(docs), len(index.term(term).docs), index.size)
        if lift < MIN_LIFT:
            continue
        scored.append((score, text, count))
        if last is not None and (-score, text) > last:  # after the last chosen
            continue
        chosen = _choose(scored, limit)
        last = (-chosen[-1][0], chosen[-1][1].text) if len(chosen) == limit else None
        back = [c for c in skipped if last is None or c[:2] <= last]
        if back:  # a term chosen pushed another out: those after it may rank before now
            skipped = [c for c in skipped if c not in back]
            for again in back:
                heapq.heappush(pending, again)
    return [related for _, related in chosen]


def related(index: Index, query: Query, limit: int = 5, keys: Keys | None = None) -> list[Related]:
    """What to offer beside a line: its family's other names, then significant terms."""
    if query.trending:
        return []
    return family_terms(index, query) + significant_terms(index, query, limit, keys)
