"""The why line of a paper in a digest: the interest, the words that matched, and where.

The words a paper uses are quoted only where they differ from the interest's own (a
stem, an acronym's long form), so a why line never just repeats a word.
"""

from __future__ import annotations

from functools import lru_cache

from digest.mail.text import clip, one_line
from digest.match.highlight import spans, tokens
from digest.match.query import InterestError, parse, split_label
from digest.match.text import name_parts, names_match


def _interest(line: str) -> str:
    """An interest line quoted for a sentence: “…”, a lone quoted phrase without its quotes."""
    text = clip(split_label(line)[0].strip(), 80)
    if text.startswith('"') and text.endswith('"') and text.count('"') == 2:
        text = text[1:-1]
    return f"“{text}”"


@lru_cache(maxsize=8192)
def explain(
    interest: str,
    terms: tuple[str, ...],
    title: str,
    abstract: str,
    authors: tuple[str, ...],
    categories: tuple[str, ...],
    upvotes: int | None = None,
) -> str:
    """The why line of a paper matched by `terms` of `interest`."""
    if is_trending(interest):
        votes = f"{upvotes} upvote{'s' * (upvotes != 1)}" if upvotes is not None else "upvotes"
        return f"trending on Hugging Face, with {votes} ({_interest(interest)})."
    own = {
        tuple(word for _, _, word, _ in tokens(term.partition(":")[2] or term)) for term in terms
    }
    places: list[str] = []
    said: list[tuple[tuple[str, ...], str]] = []
    for place, text in (("title", title), ("abstract", abstract)):
        found = spans(text, terms)
        if found:
            places.append(f"the {place}")
        for start, end in found:
            surface = one_line(text[start:end])
            key = tuple(word for _, _, word, _ in tokens(surface))
            if key not in own and all(key != k for k, _ in said):
                said.append((key, surface))
    people = [a for a in authors if any(_follows(term, a) for term in terms)]
    cats = [c for c in categories if any(_in_category(term, c) for term in terms)]
    parts = []
    if said:
        shown = ", ".join(f"“{clip(surface, 40)}”" for _, surface in said[:4])
        parts.append(f"{shown} in {' and '.join(places)}")
    elif places:
        parts.append(f"in {' and '.join(places)}")
    if cats:
        parts.append(f"in {', '.join(clip(c, 30) for c in cats[:3])}")
    if people and not places and not cats:
        return f"you follow {', '.join(people[:3])}."
    if people:
        parts.append(f"by {', '.join(people[:3])}")
    if not parts:
        return f"it matched your interest {_interest(interest)}."
    return f"your interest {_interest(interest)}: {', '.join(parts)}."


@lru_cache(maxsize=8192)
def is_trending(line: str) -> bool:
    """Whether an interest line asks for trending papers."""
    try:
        return parse(line).trending > 0
    except InterestError:
        return False


def _follows(term: str, author: str) -> bool:
    field, _, name = term.partition(":")
    return field == "author" and names_match(name_parts(name.strip('"')), name_parts(author))


def _in_category(term: str, category: str) -> bool:
    field, _, wanted = term.partition(":")
    found = category.lower()
    return field == "cat" and (found == wanted or found.startswith(wanted + "."))
