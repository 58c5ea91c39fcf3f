"""The interest language checked one paper at a time: the reference the engine must agree with.

For tests and as the baseline of bench/match.py; far too slow for a population."""

from __future__ import annotations

from digest.match.index import SLOP, Index
from digest.match.query import And, Node, Not, Or, Term
from digest.match.text import name_parts, names_match


def _follows(seq: list[int], tokens: list[int], slop: int) -> bool:
    """Whether `tokens` occur in `seq` in order, each within `slop` words of the one before."""
    for start, token in enumerate(seq):
        if token != tokens[0]:
            continue
        at = start
        for wanted in tokens[1:]:
            window = seq[at + 1 : at + 2 + slop]
            if wanted not in window:
                break
            at += 1 + window.index(wanted)
        else:
            return True
    return False


def _has(index: Index, name: str, doc: int, words: tuple[str, ...], stemmed: bool) -> bool:
    field = index.fields[name]
    tokens = field.phrase(words, stemmed)
    if tokens is None:
        return False
    if len(tokens) == 1:
        seq = (field.stem_sequences if stemmed else field.sequences)[doc]
        return tokens[0] in seq or tokens[0] in field.compounds[doc]
    if stemmed:
        return _follows(field.loose_sequences[doc], tokens, SLOP)
    return _follows(field.sequences[doc], tokens, 0)


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
