"""The interest language checked one paper at a time: the reference the engine must agree with.

For tests and as the baseline of bench/match.py; far too slow for a population."""

from __future__ import annotations

from collections.abc import Sequence

from digest.match.index import WINDOW, Index, windowed
from digest.match.query import And, Node, Not, Or, Term
from digest.match.text import name_parts, names_match


def _adjacent(seq: Sequence[int], tokens: list[int]) -> bool:
    """Whether `tokens` occur in `seq` side by side, in order."""
    n, wanted = len(tokens), tuple(tokens)
    return any(tuple(seq[i : i + n]) == wanted for i in range(len(seq) - n + 1))


def _near(seq: Sequence[int], tokens: list[int]) -> bool:
    """Whether every token occurs within `reach` words of an occurrence of the first."""
    reach = len(tokens) - 1 + WINDOW
    return any(
        token == tokens[0]
        and all(other in seq[max(0, i - reach) : i + reach + 1] for other in tokens[1:])
        for i, token in enumerate(seq)
    )


def _has(index: Index, name: str, doc: int, words: tuple[str, ...], stemmed: bool) -> bool:
    field = index.fields[name]
    tokens = field.phrase(words, stemmed)
    if tokens is None:
        return False
    if len(tokens) == 1:
        seq = (field.stem_sequences if stemmed else field.sequences)[doc]
        return tokens[0] in seq or tokens[0] in field.compounds[doc]
    if stemmed:
        near = _near if windowed(words) else _adjacent
        return near(field.loose_sequences[doc], tokens)
    return _adjacent(field.sequences[doc], tokens)


def term_matches(index: Index, term: Term, doc: int) -> bool:
    """Whether paper `doc` of the batch holds `term`."""
    paper = index.papers[doc]
    if term.field == "cat":
        wanted = term.words[0]
        return any(
            c.casefold() == wanted or c.casefold().split(".")[0] == wanted for c in paper.categories
        )
    if term.field == "author":
        return any(names_match(term.words, name_parts(author)) for author in paper.authors)
    if term.field == "like":
        return bool(index.term(term).bits >> doc & 1)
    names = ("title", "abstract") if not term.field else (term.field,)
    return any(
        _has(index, name, doc, words, stemmed)
        for name in names
        for words, stemmed in index.patterns(term, index.fields[name])
    )


def matches(index: Index, node: Node, doc: int) -> bool:
    """Whether paper `doc` of the batch satisfies the query tree `node`."""
    if isinstance(node, Term):
        return term_matches(index, node, doc)
    if isinstance(node, Not):
        return not matches(index, node.child, doc)
    if isinstance(node, Or):
        return any(matches(index, child, doc) for child in node.children)
    assert isinstance(node, And)
    return all(matches(index, child, doc) for child in node.children)
