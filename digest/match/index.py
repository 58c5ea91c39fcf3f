"""The index of one batch of papers: postings per field, and each term's hits and score.

A term's hits are a bitset (a Python int, bit i = the batch's paper i) so that AND, OR
and NOT over a whole batch are single integer operations; its BM25F scores are a sparse
numpy vector. Each distinct term is evaluated once per batch and cached.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from digest.match.acronyms import Table, learn
from digest.match.query import Term
from digest.match.text import analyse, name_parts, names_match, stem

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

TITLE_WEIGHT = 2.5
K1, B = 1.2, 0.75
UPVOTE_BOOST = 0.05  # score x (1 + 0.05 ln(1 + upvotes)): a nudge, not a ranking of its own
FIELD_SCORE = 1.0  # what an author: or cat: term adds; they have no term frequency


@dataclass(frozen=True)
class PaperDoc:
    """The fields of a paper that matching reads."""

    id: int
    title: str
    abstract: str
    upvotes: int | None = None
    authors: tuple[str, ...] = field(default=())
    categories: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class TermHits:
    """Where one term occurs in the batch: a bitset, and a score for each paper in it."""

    bits: int
    docs: Ints
    scores: Floats


def to_bits(docs: Ints) -> int:
    """A bitset (Python int) with the bits of `docs` set."""
    if not len(docs):
        return 0
    mask = np.zeros(int(docs.max()) + 1, dtype=bool)
    mask[docs] = True
    return int.from_bytes(np.packbits(mask, bitorder="little").tobytes(), "little")


def from_bits(bits: int, size: int) -> Ints:
    """The set bits of a bitset, ascending."""
    if not bits:
        return np.zeros(0, dtype=np.int64)
    raw = np.frombuffer(bits.to_bytes((size + 7) // 8, "little"), dtype=np.uint8)
    return np.flatnonzero(np.unpackbits(raw, bitorder="little")[:size])


class _Field:
    """Postings (exact words and stems) and word sequences of one text field of every paper."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.vocab: dict[str, int] = {}
        self.sequences: list[list[int]] = []
        self.stem_sequences: list[list[int]] = []
        self.compounds: list[frozenset[int]] = []
        pairs_doc: list[int] = []
        pairs_token: list[int] = []
        vocab = self.vocab
        ids: dict[str, tuple[int, int]] = {}  # word -> (its id, its stem's id)

        def word_ids(word: str) -> tuple[int, int]:
            found = ids.get(word)
            if found is None:
                exact = vocab.setdefault(word, len(vocab))
                found = ids[word] = (exact, vocab.setdefault("\0" + stem(word), len(vocab)))
            return found

        for doc, text in enumerate(texts):
            words, joined = analyse(text)
            pairs = [ids.get(w) or word_ids(w) for w in words]
            exact = [pair[0] for pair in pairs]
            stems = [pair[1] for pair in pairs]
            extra = [i for w in joined for i in word_ids(w)]
            self.sequences.append(exact)
            self.stem_sequences.append(stems)
            self.compounds.append(frozenset(extra))
            every = exact + stems + extra
            pairs_doc.extend([doc] * len(every))
            pairs_token.extend(every)
        # All papers' words end to end, -1 between papers, and where each word occurs: a
        # phrase is then checked at every occurrence of its first word at once.
        flat: list[int] = []
        flat_stems: list[int] = []
        for exact, stems in zip(self.sequences, self.stem_sequences, strict=True):
            flat.extend(exact)
            flat.append(-1)
            flat_stems.extend(stems)
            flat_stems.append(-1)
        self.flat: Ints = np.array(flat, dtype=np.int64)
        self.flat_stems: Ints = np.array(flat_stems, dtype=np.int64)
        lengths = np.array([len(s) for s in self.sequences], dtype=np.float64)
        self.doc_of: Ints = np.repeat(np.arange(len(texts)), (lengths + 1).astype(np.int64))
        # Per stemmed?: positions sorted by word id, and the word ids in that order.
        self._order = {
            stemmed: (np.argsort(flat, kind="stable"), np.sort(flat))
            for stemmed, flat in ((False, self.flat), (True, self.flat_stems))
        }
        average = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0
        self.norm: Floats = 1 - B + B * lengths / average
        keys, counts = np.unique(
            np.array(pairs_token, dtype=np.int64) * max(len(texts), 1) + pairs_doc,
            return_counts=True,
        )
        tokens, docs = np.divmod(keys, max(len(texts), 1))
        self.docs: Ints = docs
        self.tf: Floats = counts.astype(np.float64)
        self.starts: Ints = np.searchsorted(tokens, np.arange(len(vocab) + 1))

    def token(self, word: str, stemmed: bool) -> int | None:
        """The id of a word (or of a stem), if any paper has it."""
        return self.vocab.get("\0" + word if stemmed else word)

    def postings(self, token: int) -> tuple[Ints, Floats]:
        """Papers holding `token`, and how often."""
        start, end = self.starts[token], self.starts[token + 1]
        return self.docs[start:end], self.tf[start:end]

    def occurrences(self, words: tuple[str, ...], stemmed: bool) -> tuple[Ints, Floats]:
        """Papers holding the words consecutively (a phrase), and how often."""
        ids = [self.token(word, stemmed) for word in words]
        if any(token is None for token in ids):
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        tokens = [token for token in ids if token is not None]
        if len(tokens) == 1:
            return self.postings(tokens[0])
        flat = self.flat_stems if stemmed else self.flat
        order, ordered = self._order[stemmed]
        lo, hi = np.searchsorted(ordered, [tokens[0], tokens[0] + 1])
        starts = order[lo:hi]
        for offset, token in enumerate(tokens[1:], start=1):
            starts = starts[flat[np.minimum(starts + offset, len(flat) - 1)] == token]
        docs, counts = np.unique(self.doc_of[starts], return_counts=True)
        return docs, counts.astype(np.float64)


class Index:
    """Everything matching needs to know about one batch of papers."""

    def __init__(self, papers: Sequence[PaperDoc], acronyms: Table | None = None) -> None:
        self.papers = papers
        self.size = len(papers)
        self.everything = (1 << self.size) - 1
        self.fields = {
            "title": _Field([paper.title for paper in papers]),
            "abstract": _Field([paper.abstract for paper in papers]),
        }
        self.acronyms = acronyms if acronyms is not None else learn(p.abstract for p in papers)
        self.long_forms: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for acronym, forms in self.acronyms.items():
            for form in forms:
                self.long_forms[form].add(acronym)
        self.authors: dict[str, list[tuple[int, tuple[str, ...]]]] = defaultdict(list)
        self.categories: dict[str, list[int]] = defaultdict(list)
        for doc, paper in enumerate(papers):
            for author in paper.authors:
                parts = name_parts(author)
                if parts:
                    self.authors[parts[-1]].append((doc, parts))
            for category in {c.casefold() for c in paper.categories}:
                self.categories[category].append(doc)
                if "." in category:
                    self.categories[category.split(".")[0]].append(doc)
        upvotes = np.array([max(paper.upvotes or 0, 0) for paper in papers], dtype=np.float64)
        self.upvotes: Floats = upvotes
        self.boost: Floats = 1 + UPVOTE_BOOST * np.log1p(upvotes)
        self._cache: dict[Term, TermHits] = {}

    def term(self, term: Term) -> TermHits:
        """The hits and scores of one term (cached for the batch)."""
        found = self._cache.get(term)
        if found is None:
            found = self._cache[term] = self._evaluate(term)
        return found

    def _evaluate(self, term: Term) -> TermHits:
        if term.field in ("author", "cat"):
            docs = self._field_docs(term)
            return TermHits(to_bits(docs), docs, np.full(len(docs), FIELD_SCORE))
        fields = ("title", "abstract") if not term.field else (term.field,)
        pseudo = np.zeros(self.size)
        for name in fields:
            index = self.fields[name]
            weight = TITLE_WEIGHT if name == "title" else 1.0
            # The most frequent form counts, so "in-context" is not counted twice (as the
            # phrase "in context" and as "incontext").
            best = np.zeros(self.size)
            for words, stemmed in self.patterns(term, index):
                docs, tf = index.occurrences(words, stemmed)
                if len(docs):
                    best[docs] = np.maximum(best[docs], tf)
            pseudo += weight * best / index.norm
        docs = np.flatnonzero(pseudo)
        df = len(docs)
        idf = math.log(1 + (self.size - df + 0.5) / (df + 0.5))
        tf = pseudo[docs]
        return TermHits(to_bits(docs), docs, idf * tf * (K1 + 1) / (K1 + tf))

    def _field_docs(self, term: Term) -> Ints:
        if term.field == "cat":
            found = set(self.categories.get(term.words[0], ()))
        else:
            found = {
                doc
                for doc, parts in self.authors.get(term.words[-1], ())
                if names_match(term.words, parts)
            }
        return np.array(sorted(found), dtype=np.int64)

    def patterns(self, term: Term, index: _Field) -> set[tuple[tuple[str, ...], bool]]:
        """The word sequences that count as the term: (words, stemmed?) pairs."""
        words = term.words
        stemmed = not term.exact
        found = {(tuple(stem(w) for w in words) if stemmed else words, stemmed)}
        if len(words) > 1:
            joined = "".join(words)
            found.add(((stem(joined),) if stemmed else (joined,), stemmed))
        elif stemmed and len(words[0]) >= 5 and index.token(words[0], False) is None:
            # "incontext" also matches "in context" when both halves are words of the batch.
            word = words[0]
            for cut in range(2, len(word) - 1):
                head, tail = word[:cut], word[cut:]
                if index.token(head, False) is not None and index.token(tail, False) is not None:
                    found.add(((head, tail), False))
        acronym = words[0] if len(words) == 1 else None
        if acronym and acronym not in self.acronyms and acronym.endswith("s"):
            acronym = acronym[:-1]  # "llms" typed in lower case
        if acronym in self.acronyms:
            found.add(((acronym,), False))
            found.update((form, True) for form in self.acronyms[acronym])
        for short in self.long_forms.get(tuple(stem(w) for w in words), ()):
            found.add(((short,), False))
        return found
