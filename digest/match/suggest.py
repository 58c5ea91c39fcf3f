"""Related terms for an interest line, offered as one-click additions (never added silently).

Two kinds: the other members of an acronym family (they already match the same papers;
shown so the reader knows), and words or word pairs that are much more common in the
papers the line matches than in the whole batch (significant terms, as Elasticsearch's
`significant_terms` scores them: foreground rate x log of its ratio to the background).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from digest.match.engine import rank
from digest.match.index import Index, loose_key
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


def _counts(
    index: Index, docs: list[int]
) -> tuple[Counter[tuple[str, ...]], dict[tuple[str, ...], str]]:
    """How many of `docs` hold each stem and each adjacent pair of stems, and a spelling."""
    counts: Counter[tuple[str, ...]] = Counter()
    spelling: dict[tuple[str, ...], str] = {}
    fields = [(index.fields[name], index.fields[name].words()) for name in ("title", "abstract")]
    for doc in docs:
        seen: set[tuple[str, ...]] = set()
        for field, words in fields:
            stems = [words[t] for t in field.stem_sequences[doc]]
            exact = [words[t] for t in field.sequences[doc]]
            for i, stem in enumerate(stems):
                if exact[i] in _SKIP or len(exact[i]) < 3 or not exact[i].isalpha():
                    continue
                keys: list[tuple[tuple[str, ...], str]] = [((stem,), exact[i])]
                if i + 1 < len(stems) and exact[i + 1] not in _SKIP and exact[i + 1].isalpha():
                    keys.append(((stem, stems[i + 1]), f"{exact[i]} {exact[i + 1]}"))
                for key, text in keys:
                    seen.add(key)
                    spelling.setdefault(key, text)
        counts.update(seen)
    return counts, spelling


def significant_terms(index: Index, query: Query, limit: int = 5) -> list[Related]:
    """Words and word pairs far more common in the line's matches than in the batch."""
    ranked = rank(index, query, keep=MAX_FOREGROUND)
    docs = ranked.docs.tolist()
    if len(docs) < MIN_COUNT or index.size < max(MIN_BATCH, 4 * len(docs)):
        return []
    counts, spelling = _counts(index, docs)
    # Words of the line, of its acronyms and of their long forms say nothing new.
    own = {stem for term in query.terms for stem in loose_key(term.words)}
    for term in query.terms:
        own |= {stem for words in index.family(term.words) or () for stem in loose_key(words)}
    scored: list[tuple[float, str, int]] = []
    for key, count in counts.items():
        share = count / len(docs)
        text = spelling[key]
        if share < MIN_SHARE or count < MIN_COUNT or set(key) <= own:
            continue
        background = len(index.term(Term("", tuple(text.split()))).docs)
        lift = share / max(background / index.size, 1e-9)
        if lift >= MIN_LIFT:
            scored.append((share * math.log(lift), text, count))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    chosen: list[Related] = []
    for _, text, count in scored:
        if any(text in other.text or other.text in text for other in chosen):
            continue
        chosen.append(Related(text, f"in {count} of the papers matched"))
        if len(chosen) == limit:
            break
    return chosen


def related(index: Index, query: Query, limit: int = 5) -> list[Related]:
    """What to offer beside a line: its family's other names, then significant terms."""
    if query.trending:
        return []
    return family_terms(index, query) + significant_terms(index, query, limit)
