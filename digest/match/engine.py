"""The engine: evaluate each distinct interest once over a batch index, rank, fan out.

`Matcher.match` is the seam delivery uses (`InterestMatcher` implements it). `evaluate`
and `fan_out` are the bulk path: every distinct interest gives a ranked hit list and a
bitset; subscribers are then served with numpy over all their lines at once, never a
loop over subscribers x papers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from digest.match.index import Floats, Index, Ints, PaperDoc, from_bits, to_bits
from digest.match.like import likeness
from digest.match.query import Node, Not, Or, Query, Term, parse


@dataclass(frozen=True)
class Hit:
    """A paper that matched an interest, with its score and the terms that matched."""

    paper_id: int
    score: float
    terms: tuple[str, ...] = field(default=())


def bits_of(index: Index, node: Node) -> int:
    """The papers of the batch that `node` matches, as a bitset."""
    if isinstance(node, Term):
        return index.term(node).bits
    if isinstance(node, Or):
        found = 0
        for child in node.children:
            found |= bits_of(index, child)
        return found
    if isinstance(node, Not):
        return index.everything & ~bits_of(index, node.child)
    found = index.everything
    for child in node.children:
        found &= bits_of(index, child)
        if not found:
            break
    return found


@dataclass(frozen=True)
class Ranked:
    """One interest over a batch: matching papers (batch positions) best first, and scores."""

    bits: int
    docs: Ints
    scores: Floats
    terms: tuple[Term, ...]


def rank(index: Index, query: Query, keep: int | None = None) -> Ranked:
    """Evaluate a parsed interest: hits best first by BM25F score (x upvote nudge)."""
    # With `keep`, only the best `keep` hits are listed; the bitset still has them all.
    terms = query.terms
    if isinstance(query.root, Term):  # the most common interest: one word or phrase
        hits = index.term(query.root)
        bits, docs, scores = hits.bits, hits.docs, hits.scores * index.boost[hits.docs]
    else:
        bits = bits_of(index, query.root)
        docs = from_bits(bits, index.size)
        if not len(docs):
            return Ranked(0, docs, np.zeros(0), terms)
        total = np.zeros(index.size)
        for term in terms:
            hits = index.term(term)
            total[hits.docs] += hits.scores
        scores = total[docs] * index.boost[docs]
    if query.trending:
        return _trending(index, query, docs)
    if keep is not None and len(docs) > keep:
        # The best `keep`, ties at the cut going to the lowest positions, as a full sort would.
        cut = np.partition(scores, len(scores) - keep)[len(scores) - keep]
        above = np.flatnonzero(scores > cut)
        tied = np.flatnonzero(scores == cut)[: keep - len(above)]
        best = np.concatenate([above, tied])
        docs, scores = docs[best], scores[best]
        order = np.lexsort((docs, -scores))
    else:
        order = np.argsort(-scores, kind="stable")
    return Ranked(bits, docs[order], scores[order], terms)


def _trending(index: Index, query: Query, docs: Ints) -> Ranked:
    """A `trending` line's hits: the papers it allows with the most upvotes, most first.

    Scores are upvotes relative to the batch's most upvoted paper (0 to 1]; papers with
    no upvotes known are never trending.
    """
    upvoted = docs[index.upvotes[docs] > 0]
    votes = index.upvotes[upvoted]
    order = np.lexsort((upvoted, -votes))[: query.trending]
    chosen = upvoted[order]
    scores = index.upvotes[chosen] / max(float(index.upvotes.max(initial=0.0)), 1.0)
    return Ranked(to_bits(chosen), chosen, scores, query.terms)


def matched_terms(index: Index, ranked: Ranked, doc: int) -> tuple[str, ...]:
    """The positive terms of the interest that occur in paper `doc` (the "why")."""
    return tuple(t.shown for t in ranked.terms if index.term(t).bits >> doc & 1)


def every_why(index: Index, ranked: Ranked) -> list[tuple[str, ...]]:
    """`matched_terms` of every paper of `ranked`, in its order: one pass per term, and
    one tuple per distinct set of terms."""
    terms = ranked.terms
    if len(terms) > 62:  # the sets as bits of an int64
        return [matched_terms(index, ranked, doc) for doc in ranked.docs.tolist()]
    sets = np.zeros(len(ranked.docs), dtype=np.int64)
    held = np.zeros(index.size, dtype=bool)
    for bit, term in enumerate(terms):
        held[:] = False
        held[index.term(term).docs] = True
        sets |= held[ranked.docs].astype(np.int64) << bit
    shown = [term.shown for term in terms]
    named = {
        code: tuple(name for bit, name in enumerate(shown) if code >> bit & 1)
        for code in np.unique(sets).tolist()
    }
    return [named[code] for code in sets.tolist()]


class Matcher(Protocol):
    """What delivery sees of matching: distinct interests evaluated over a batch of papers.

    Each distinct interest is evaluated once; fanning out to subscribers is the caller's
    job (or `fan_out`'s, for a whole population at once).
    """

    def match(
        self,
        papers: Sequence[PaperDoc],
        interests: Iterable[str],
        seeds: Mapping[str, PaperDoc] | None = None,
    ) -> dict[str, list[Hit]]:
        """Map each interest's canonical form to the papers it matches, best first.

        `seeds` are the papers outside the batch that `like:` terms name.
        """
        ...

    def likeness(
        self, papers: Sequence[PaperDoc], refs: Iterable[str], seeds: Mapping[str, PaperDoc]
    ) -> dict[str, list[tuple[int, float]]]:
        """For each paper reference, how like it every paper of the batch is (id, score>0)."""
        ...


class InterestMatcher:
    """The interest language over a batch: stems, phrases, fields, acronyms, BM25F ranking.

    The index of the last batch is kept, so that `likeness` after `match` on the same
    papers does not index them again.
    """

    def __init__(self) -> None:
        self._last: tuple[Sequence[PaperDoc], Index] | None = None
        self._lock = threading.Lock()  # previews match from many threads: one index at a time

    def __getstate__(self) -> dict[str, Any]:
        """A matcher sent to another process (a planning one) goes without its index."""
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def _index(self, papers: Sequence[PaperDoc], seeds: Mapping[str, PaperDoc] | None) -> Index:
        with self._lock:
            if self._last is not None and self._last[0] is papers:
                index = self._last[1]
                index.seeds.update(seeds or {})
                return index
            index = Index(papers, seeds=seeds)
            self._last = (papers, index)
            return index

    def likeness(
        self, papers: Sequence[PaperDoc], refs: Iterable[str], seeds: Mapping[str, PaperDoc]
    ) -> dict[str, list[tuple[int, float]]]:
        """For each paper reference, how like it every paper of the batch is (id, score>0)."""
        index = self._index(papers, seeds)
        found: dict[str, list[tuple[int, float]]] = {}
        for ref in refs:
            total, _ = likeness(index, ref)
            docs = np.flatnonzero(total > 0)
            found[ref] = [(papers[d].id, float(total[d])) for d in docs.tolist()]
        return found

    def match(
        self,
        papers: Sequence[PaperDoc],
        interests: Iterable[str],
        seeds: Mapping[str, PaperDoc] | None = None,
    ) -> dict[str, list[Hit]]:
        """Map each distinct interest's canonical form (and each line as given) to its hits."""
        index = self._index(papers, seeds)
        results: dict[str, list[Hit]] = {}
        for line in interests:
            query = parse(line)
            if query.canonical in results:
                # A form stored by an older version still finds its hits under its own text.
                results.setdefault(line, results[query.canonical])
                continue
            ranked = rank(index, query)
            docs, scores = ranked.docs.tolist(), ranked.scores.tolist()
            results[line] = results[query.canonical] = [
                Hit(papers[doc].id, round(score, 6), why)
                for doc, score, why in zip(docs, scores, every_why(index, ranked), strict=True)
            ]
        return results


@dataclass
class Evaluated:
    """Every distinct interest of a population, evaluated once over one batch."""

    size: int
    keys: list[str]
    ranked: list[Ranked]

    _matrix: npt.NDArray[np.uint64] | None = None

    def bitsets(self) -> npt.NDArray[np.uint64]:
        """The hit bitsets of all interests as an (interests, words) uint64 matrix."""
        if self._matrix is None:
            width = (self.size + 63) // 64 * 8
            raw = b"".join(ranked.bits.to_bytes(width, "little") for ranked in self.ranked)
            self._matrix = np.frombuffer(raw, dtype=np.uint64).reshape(len(self.ranked), -1)
        return self._matrix


def evaluate(index: Index, interests: Iterable[str], keep: int | None = None) -> Evaluated:
    """Evaluate each distinct interest once; row i is `keys[i]`, a canonical form."""
    # `keep` bounds each hit list: the largest digest size is enough for `fan_out`.
    keys: list[str] = []
    ranked: list[Ranked] = []
    seen: set[str] = set()
    for line in interests:
        if line in seen:
            continue
        seen.add(line)
        query = parse(line)
        if query.canonical != line and query.canonical in seen:
            continue
        seen.add(query.canonical)
        keys.append(query.canonical)
        ranked.append(rank(index, query, keep))
    return Evaluated(index.size, keys, ranked)


@dataclass
class FanOut:
    """Per subscriber (CSR by `ptr`): chosen papers, scores, best lines, and match counts."""

    # `lines` holds the position, in the subscriber's own list, of the line that scored
    # each paper best (the "why"); `matched` counts every paper matched, chosen or not.

    ptr: Ints
    docs: npt.NDArray[np.int32]
    scores: Floats
    lines: npt.NDArray[np.int32]
    matched: Ints


def _ranges(starts: Ints, lengths: Ints) -> Ints:
    """Concatenated aranges: starts[i] .. starts[i] + lengths[i]."""
    total = int(lengths.sum())
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + np.arange(total) - offsets


def _bits(count: int) -> int:
    return max(int(count - 1).bit_length(), 1)


@dataclass
class _Hits:
    """Every interest's top hits end to end, scores replaced by their rank among all."""

    ptr: Ints
    lengths: Ints
    docs: Ints
    ranks: Ints
    values: Floats  # values[rank] is the score
    ordered: Ints  # row * len(values) + rank: ascending over the whole array


def _hits(evaluated: Evaluated, top: int) -> _Hits:
    ranked = evaluated.ranked
    lengths = np.array([min(len(r.docs), top) for r in ranked], dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    docs = np.concatenate([r.docs[:top] for r in ranked] + [np.zeros(0, np.int64)])
    scores = np.concatenate([r.scores[:top] for r in ranked] + [np.zeros(0)])
    negated, ranks = np.unique(-scores, return_inverse=True)
    ranks = ranks.astype(np.int64)
    ordered = np.repeat(np.arange(len(ranked), dtype=np.int64), lengths) * len(negated) + ranks
    return _Hits(ptr, lengths, docs, ranks, -negated, ordered)


def fan_out(
    evaluated: Evaluated, line_ptr: Ints, line_rows: Ints, limits: Ints, *, chunk: int = 32768
) -> FanOut:
    """Give every subscriber their top `limits[s]` papers over all their lines, and counts."""
    # Subscriber s has lines `line_rows[line_ptr[s]:line_ptr[s + 1]]` (rows of `evaluated`);
    # a paper counts once, with its best score. A paper beyond a line's first `limits[s]`
    # hits cannot reach the subscriber's top list, so only those are expanded; the matched
    # count comes from OR-ing the lines' bitsets.
    subscribers = len(line_ptr) - 1
    hits = _hits(evaluated, int(limits.max()) if subscribers else 0)
    widths = (
        _bits(evaluated.size),
        _bits(len(hits.values) + 1),
        _bits(int(np.diff(line_ptr).max()) + 1 if subscribers else 1),
    )
    chunk = min(chunk, 1 << max(63 - sum(widths), 1))
    parts = [
        _fan_chunk(evaluated, hits, widths, line_ptr, line_rows, limits, first, first + chunk)
        for first in range(0, subscribers, chunk)
    ]
    counts = np.concatenate([p[0] for p in parts] + [np.zeros(0, np.int64)])
    return FanOut(
        ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        docs=np.concatenate([p[1] for p in parts] + [np.zeros(0, np.int32)]),
        scores=np.concatenate([p[2] for p in parts] + [np.zeros(0)]),
        lines=np.concatenate([p[3] for p in parts] + [np.zeros(0, np.int32)]),
        matched=np.concatenate([p[4] for p in parts] + [np.zeros(0, np.int64)]),
    )


def _fan_chunk(
    evaluated: Evaluated,
    hits: _Hits,
    widths: tuple[int, int, int],
    line_ptr: Ints,
    line_rows: Ints,
    limits: Ints,
    first: int,
    last: int,
) -> tuple[Ints, npt.NDArray[np.int32], Floats, npt.NDArray[np.int32], Ints]:
    last = min(last, len(line_ptr) - 1)
    subs = last - first
    per_sub = np.diff(line_ptr[first : last + 1])
    lo, hi = int(line_ptr[first]), int(line_ptr[last])
    rows = line_rows[lo:hi]
    owner = np.repeat(np.arange(subs, dtype=np.int64), per_sub)
    position = np.arange(hi - lo) - np.repeat(line_ptr[first:last] - lo, per_sub)
    limit = limits[first:last][owner]
    take = np.minimum(hits.lengths[rows], limit)
    # A line with `limit` hits already fills the digest: nothing ranked below its last one
    # can make the cut, so every line of the subscriber stops at the best such threshold.
    full = take == limit
    threshold = np.full(len(rows), len(hits.values), dtype=np.int64)
    threshold[full] = hits.ranks[hits.ptr[rows[full]] + limit[full] - 1]
    bound = np.full(subs, len(hits.values), dtype=np.int64)
    np.minimum.at(bound, owner, threshold)
    cut = np.searchsorted(hits.ordered, rows * len(hits.values) + bound[owner], side="right")
    take = np.minimum(take, cut - hits.ptr[rows])
    entries = _ranges(hits.ptr[rows], take)
    doc_bits, rank_bits, line_bits = widths
    sub = np.repeat(owner, take)
    # Two sorts of packed int64 keys: (subscriber, paper, rank, line) keeps each paper's
    # best line first; (subscriber, rank, paper, line) then orders each digest.
    key = sub << (doc_bits + rank_bits + line_bits)
    key |= hits.docs[entries] << (rank_bits + line_bits)
    key |= hits.ranks[entries] << line_bits
    key |= np.repeat(position, take)
    key.sort()
    pair = key >> (rank_bits + line_bits)
    best = np.ones(len(key), dtype=bool)
    best[1:] = pair[1:] != pair[:-1]
    key = key[best]
    line = key & ((1 << line_bits) - 1)
    rank = (key >> line_bits) & ((1 << rank_bits) - 1)
    doc = (key >> (rank_bits + line_bits)) & ((1 << doc_bits) - 1)
    sub = key >> (doc_bits + rank_bits + line_bits)
    key = (sub << (rank_bits + doc_bits + line_bits)) | (rank << (doc_bits + line_bits))
    key |= (doc << line_bits) | line
    key.sort()
    sub = key >> (rank_bits + doc_bits + line_bits)
    starts = np.searchsorted(sub, np.arange(subs))
    keep = np.arange(len(key)) - starts[sub] < limits[first:last][sub]
    key, sub = key[keep], sub[keep]
    rank = (key >> (doc_bits + line_bits)) & ((1 << rank_bits) - 1)
    doc = (key >> line_bits) & ((1 << doc_bits) - 1)
    counts = np.bincount(sub, minlength=subs).astype(np.int64)
    matched = _matched(evaluated, line_ptr[first : last + 1], line_rows)
    line = (key & ((1 << line_bits) - 1)).astype(np.int32)
    return counts, doc.astype(np.int32), hits.values[rank], line, matched


def _matched(evaluated: Evaluated, line_ptr: Ints, line_rows: Ints) -> Ints:
    """How many distinct papers each subscriber's lines match: popcount of their OR."""
    counts = np.diff(line_ptr)
    # Subscribers with the most lines first, so each slot's OR is over a prefix (no scatter).
    order = np.argsort(-counts, kind="stable")
    counts, starts = counts[order], line_ptr[:-1][order]
    table = evaluated.bitsets()
    union = np.zeros((len(counts), table.shape[1]), dtype=np.uint64)
    for slot in range(int(counts[0]) if len(counts) else 0):
        upto = int(np.searchsorted(-counts, -slot, side="left"))
        union[:upto] |= table[line_rows[starts[:upto] + slot]]
    matched = np.empty(len(counts), dtype=np.int64)
    matched[order] = np.bitwise_count(union).sum(axis=1, dtype=np.int64)
    return matched
