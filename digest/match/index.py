"""The index of one batch of papers: postings per field, and each term's hits and score.

A term's hits are a bitset (a Python int, bit i = the batch's paper i) so that AND, OR
and NOT over a whole batch are single integer operations; its BM25F scores are a sparse
numpy vector. Each distinct term is evaluated once per batch and cached.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from digest.match.acronyms import Table, curated, learn
from digest.match.like import TITLE_WEIGHT, similar
from digest.match.query import Term
from digest.match.text import (
    CAPS,
    FUNCTION_WORDS,
    PHRASE_STOP,
    analyse,
    capitalised,
    name_parts,
    names_match,
    stem,
)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

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
    arxiv_id: str | None = None


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


# A loose phrase's words may come in any order, with up to WINDOW other words among them:
# `low precision training` finds "training in low precision" (bench/relevance.py chose 3
# over adjacent words in order, and over 1, 2, 5 and 8).
WINDOW = 3


def windowed(stems: Sequence[str]) -> bool:
    """Whether a loose phrase (its stems) may match within WINDOW, in any order (a negative
    WINDOW, for comparison: never)."""
    return WINDOW >= 0 and len(stems) > 1 and not any(s in FUNCTION_WORDS for s in stems)


def _positions(flat: Ints) -> tuple[Ints, Ints]:
    """Positions in `flat` sorted by word id, and the word ids in that order."""
    order = np.argsort(flat, kind="stable")
    return order, flat[order]


class _Field:
    """Postings (exact words and stems) and word sequences of one text field of every paper."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.vocab: dict[str, int] = {}
        # Tuples: the garbage collector walks a tuple of numbers once, a list at every full pass
        self.sequences: list[tuple[int, ...]] = []
        self.stem_sequences: list[tuple[int, ...]] = []
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
            extra += [vocab.setdefault(w, len(vocab)) for w in capitalised(text)]
            self.sequences.append(tuple(exact))
            self.stem_sequences.append(tuple(stems))
            self.compounds.append(frozenset(extra))
            every = exact + stems + extra
            pairs_doc.extend([doc] * len(every))
            pairs_token.extend(every)
        self.stops = frozenset(
            vocab["\0" + stem(w)] for w in PHRASE_STOP if "\0" + stem(w) in vocab
        )
        self.loose_sequences = [
            tuple(t for t in seq if t not in self.stops) for seq in self.stem_sequences
        ]
        # All papers' words end to end, -1 between papers, and where each word occurs: a
        # phrase is then checked at every occurrence of its first word at once.
        self._flat = {
            kind: self._join(sequences)
            for kind, sequences in (("exact", self.sequences), ("loose", self.loose_sequences))
        }
        self._first = {}
        for kind, (_, doc_of, _, _) in self._flat.items():
            sizes = np.bincount(doc_of, minlength=len(texts))
            self._first[kind] = (np.cumsum(sizes) - sizes)[doc_of]
        lengths = np.array([len(s) for s in self.sequences], dtype=np.float64)
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
        self._words: list[str] | None = None

    @staticmethod
    def _join(sequences: list[tuple[int, ...]]) -> tuple[Ints, Ints, Ints, Ints]:
        """(flat word ids, the paper of each position, positions by id, ids in that order)."""
        flat: list[int] = []
        for sequence in sequences:
            flat.extend(sequence)
            flat.append(-1)
        array = np.array(flat, dtype=np.int64)
        sizes = np.array([len(s) + 1 for s in sequences], dtype=np.int64)
        doc_of = np.repeat(np.arange(len(sequences)), sizes)
        return (array, doc_of, *_positions(array))

    def words(self) -> list[str]:
        """Every word and stem of the field by id (stems without their marker)."""
        if self._words is None:
            self._words = [""] * len(self.vocab)
            for word, token in self.vocab.items():
                self._words[token] = word.lstrip("\0")
        return self._words

    def token(self, word: str, stemmed: bool) -> int | None:
        """The id of a word (or of a stem), if any paper has it."""
        return self.vocab.get("\0" + word if stemmed else word)

    def postings(self, token: int) -> tuple[Ints, Floats]:
        """Papers holding `token`, and how often."""
        start, end = self.starts[token], self.starts[token + 1]
        return self.docs[start:end], self.tf[start:end]

    def phrase(self, words: tuple[str, ...], stemmed: bool) -> list[int] | None:
        """The ids a phrase is compared by (stems without PHRASE_STOP when loose), or None."""
        ids = [self.token(word, stemmed) for word in words]
        if any(token is None for token in ids):
            return None
        tokens = [token for token in ids if token is not None]
        if stemmed and len(tokens) > 1:
            kept = [token for token in tokens if token not in self.stops]
            tokens = kept or tokens[:1]
        return tokens

    def occurrences(self, words: tuple[str, ...], stemmed: bool) -> tuple[Ints, Floats]:
        """Papers holding the words, and how often: quoted, adjacent and in order; bare,
        within WINDOW other words of each other, in any order."""
        tokens = self.phrase(words, stemmed)
        if tokens is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        if len(tokens) == 1:
            return self.postings(tokens[0])
        kind = "loose" if stemmed else "exact"
        flat, doc_of, order, ordered = self._flat[kind]
        lo, hi = np.searchsorted(ordered, [tokens[0], tokens[0] + 1])
        starts = order[lo:hi]
        if stemmed and windowed(words):
            # Each other word within `reach` of an occurrence of the first, in its paper.
            reach = len(tokens) - 1 + WINDOW
            first = self._first[kind]
            for token in tokens[1:]:
                a, b = np.searchsorted(ordered, [token, token + 1])
                places = order[a:b]
                if not len(places):
                    return np.zeros(0, dtype=np.int64), np.zeros(0)
                at = np.searchsorted(places, np.maximum(starts - reach, first[starts]))
                near = places[np.minimum(at, len(places) - 1)]
                ok = (
                    (at < len(places)) & (near <= starts + reach) & (doc_of[near] == doc_of[starts])
                )
                starts = starts[ok]
        else:
            last = len(flat) - 1
            for offset, token in enumerate(tokens[1:], start=1):
                starts = starts[flat[np.minimum(starts + offset, last)] == token]
        docs, counts = np.unique(doc_of[starts], return_counts=True)
        return docs, counts.astype(np.float64)


Pattern = tuple[tuple[str, ...], bool]  # words, and whether they are compared by stem


def loose_key(words: tuple[str, ...]) -> tuple[str, ...]:
    """Folded words as a loose phrase compares them: stems, without PHRASE_STOP words."""
    stems = tuple(stem(word) for word in words)
    kept = tuple(s for s, w in zip(stems, words, strict=True) if w not in PHRASE_STOP)
    return kept or stems


MAX_JOINS = 5  # a phrase of up to this many words also matches with its words run together


def own_patterns(words: tuple[str, ...], stemmed: bool) -> set[Pattern]:
    """A term's own word sequences: its words (by stem when bare), and joined forms.

    Any neighbours may be written as one word: `parameter efficient fine tuning` also
    matches "parameter-efficient finetuning" and "parameterefficientfinetuning".
    """
    gaps = len(words) - 1
    found: set[Pattern] = set()
    for mask in range(1 << gaps if gaps < MAX_JOINS else 1):
        joined = [words[0]]
        for gap, word in enumerate(words[1:]):
            if mask >> gap & 1:
                joined[-1] += word
            else:
                joined.append(word)
        found.add((tuple(stem(w) for w in joined) if stemmed else tuple(joined), stemmed))
    if gaps >= MAX_JOINS:
        whole = "".join(words)
        found.add(((stem(whole),) if stemmed else (whole,), stemmed))
    return found


Family = frozenset[tuple[str, ...]]  # the folded words of an acronym (one) and long forms


def acronym_classes(table: Table) -> dict[object, Family]:
    """For each acronym and each long form (by `loose_key`): its whole family.

    Acronyms that share a long form are one family, so an acronym and each of its long
    forms always find the same papers.
    """
    parent: dict[str, str] = {a: a for a in table}

    def root(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    owner: dict[tuple[str, ...], str] = {}
    for acronym, forms in table.items():
        for form in forms:
            other = owner.setdefault(loose_key(form), acronym)
            parent[root(other)] = root(acronym)
    members: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for acronym, forms in table.items():
        members[root(acronym)].update({(acronym,), *forms})
    classes: dict[object, Family] = {}
    for acronym, forms in table.items():
        family = frozenset(members[root(acronym)])
        classes[acronym] = family
        for form in forms:
            classes[loose_key(form)] = family
    return classes


def family_patterns(
    family: Family, acronyms: Mapping[str, object], stemmed: bool, learned: Set[str] = frozenset()
) -> set[Pattern]:
    """What a family matches: acronyms as written (and, bare, by stem), long forms as
    phrases (quoted: exactly, side by side).

    A `learned` acronym is only found written in capitals: the long form of "CATS" must
    not find every paper about cats.
    """
    found: set[Pattern] = set()
    for words in family:
        if len(words) == 1 and words[0] in learned:
            found.add(((CAPS + words[0],), False))
        elif len(words) == 1 and words[0] in acronyms:
            found.add((words, False))
            if stemmed:
                found.add(((stem(words[0]),), True))
        else:
            found |= own_patterns(words, stemmed)
    return found


MAX_VARIANTS = 16  # spellings of a phrase with acronyms and long forms swapped inside it
_LONGEST_FORM = 6


def member_of(classes: Mapping[object, Family], words: tuple[str, ...]) -> Family | None:
    """The family whose acronym (one word, plural or not) or long form `words` is."""
    if len(words) == 1:
        word = words[0]
        found = classes.get(word)
        if found is None and word.endswith("s"):
            found = classes.get(word[:-1])  # "llms" typed in lower case
        if found is not None:
            return found
    return classes.get(loose_key(words))  # a long form, of one word or more


def phrase_variants(
    words: tuple[str, ...], classes: Mapping[object, Family], learned: Set[str] = frozenset()
) -> list[tuple[str, ...]]:
    """The phrase, and the phrase with each acronym or long form inside it written as the
    other members of its family: `LLM agents` is also "large language model agents"."""
    pieces: list[list[tuple[str, ...]]] = []
    i = 0
    while i < len(words):
        for j in range(min(len(words), i + _LONGEST_FORM), i, -1):
            family = member_of(classes, words[i:j]) if j - i < len(words) else None
            if family is not None:
                others = [m for m in family if not (len(m) == 1 and m[0] in learned)]
                pieces.append(sorted({words[i:j], *others}))
                i = j
                break
        else:
            pieces.append([words[i : i + 1]])
            i += 1
    variants: list[tuple[str, ...]] = [()]
    for piece in pieces:
        variants = [v + part for v in variants for part in piece][:MAX_VARIANTS]
    return variants


class Index:
    """Everything matching needs to know about one batch of papers.

    `seeds` holds papers outside the batch that `like:` terms may name (by arXiv id or by
    stored id, as text); papers of the batch are found by themselves.
    """

    def __init__(
        self,
        papers: Sequence[PaperDoc],
        acronyms: Table | None = None,
        seeds: Mapping[str, PaperDoc] | None = None,
    ) -> None:
        self.papers = papers
        self.size = len(papers)
        self.everything = (1 << self.size) - 1
        self.fields = {
            "title": _Field([paper.title for paper in papers]),
            "abstract": _Field([paper.abstract for paper in papers]),
        }
        self.acronyms = (
            acronyms if acronyms is not None else learn(f"{p.title}\n{p.abstract}" for p in papers)
        )
        self.classes = acronym_classes(self.acronyms)
        self.learned = frozenset(self.acronyms.keys() - curated().keys())
        self.seeds = dict(seeds or {})
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
        self._refs: dict[str, int] | None = None
        self._shared: dict[Term, set[Pattern]] = {}  # patterns the same in every field

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
        if term.field == "like":
            docs, scores = similar(self, term.words[0])
            return TermHits(to_bits(docs), docs, scores)
        fields = ("title", "abstract") if not term.field else (term.field,)
        pseudo = np.zeros(self.size)
        for name in fields:
            index = self.fields[name]
            weight = TITLE_WEIGHT if name == "title" else 1.0
            found = [
                hit
                for words, stemmed in self.patterns(term, index)
                if len((hit := index.occurrences(words, stemmed))[0])
            ]
            if not found:
                continue
            docs, tf = found[0]
            if len(found) > 1:
                # The most frequent form counts, so "in-context" is not counted twice (as
                # the phrase "in context" and as "incontext").
                every, counts = (
                    np.concatenate([d for d, _ in found]),
                    np.concatenate([t for _, t in found]),
                )
                order = np.lexsort((-counts, every))
                every, counts = every[order], counts[order]
                first = np.ones(len(every), dtype=bool)
                first[1:] = every[1:] != every[:-1]
                docs, tf = every[first], counts[first]
            pseudo[docs] += weight * tf / index.norm[docs]
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

    def family(self, words: tuple[str, ...]) -> Family | None:
        """What an acronym or a long form matches with its whole family, if it has one."""
        return member_of(self.classes, words)

    def patterns(self, term: Term, index: _Field) -> set[Pattern]:
        """The word sequences that count as the term: (words, stemmed?) pairs."""
        shared = self._shared.get(term)
        if shared is not None:
            return shared
        words = term.words
        stemmed = not term.exact
        family = self.family(words)
        if family is not None:
            # An acronym or long form is its family: bare, by stem; quoted, exactly and
            # also as typed.
            found = family_patterns(family, self.acronyms, stemmed, self.learned)
            self._shared[term] = found if stemmed else found | own_patterns(words, False)
            return self._shared[term]
        if stemmed and len(words) > 1:
            found = set()
            for variant in phrase_variants(words, self.classes, self.learned):
                found |= own_patterns(variant, True)
            self._shared[term] = found
            return found
        found = own_patterns(words, stemmed)
        if (
            len(words) == 1
            and stemmed
            and len(words[0]) >= 5
            and index.token(words[0], False) is None
        ):
            # "incontext" also matches "in context" when both halves are words of the batch.
            word = words[0]
            for cut in range(2, len(word) - 1):
                head, tail = word[:cut], word[cut:]
                if index.token(head, False) is not None and index.token(tail, False) is not None:
                    found.add(((head, tail), False))
        return found

    def find(self, ref: str) -> tuple[PaperDoc | None, int | None]:
        """The paper a `like:` reference names, and its position in the batch if it is in it."""
        if self._refs is None:  # built whole, then published: previews share the index
            refs: dict[str, int] = {}
            for doc, paper in enumerate(self.papers):
                refs[str(paper.id)] = doc
                if paper.arxiv_id:
                    refs[paper.arxiv_id.casefold()] = doc
            self._refs = refs
        position = self._refs.get(ref)
        if position is not None:
            return self.papers[position], position
        return self.seeds.get(ref), None
