"""The engine: evaluate each distinct interest once over a batch index, rank, fan out.

`InterestMatcher.match` is the seam delivery uses. `evaluate` and `fan_out` are the bulk
path: every distinct interest gives a ranked hit list and a bitset; subscribers are then
served with numpy over all their lines at once, never a loop over subscribers x papers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from digest.match.index import Floats, Index, Ints, PaperDoc, from_bits
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


def rank(index: Index, query: Query) -> Ranked:
    """Evaluate a parsed interest: hits, BM25F scores (with the upvote nudge), best first."""
    bits = bits_of(index, query.root)
    docs = from_bits(bits, index.size)
    terms = query.terms
    if not len(docs):
        return Ranked(0, docs, np.zeros(0), terms)
    total = np.zeros(index.size)
    for term in terms:
        hits = index.term(term)
        total[hits.docs] += hits.scores
    scores = total[docs] * index.boost[docs]
    order = np.argsort(-scores, kind="stable")
    return Ranked(bits, docs[order], scores[order], terms)


def matched_terms(index: Index, ranked: Ranked, doc: int) -> tuple[str, ...]:
    """The positive terms of the interest that occur in paper `doc` (the "why")."""
    return tuple(str(t) for t in ranked.terms if index.term(t).bits >> doc & 1)


class InterestMatcher:
    """The interest language over a batch: stems, phrases, fields, acronyms, BM25F ranking."""

    def match(self, papers: Sequence[PaperDoc], interests: Iterable[str]) -> dict[str, list[Hit]]:
        """Map each distinct interest's canonical form to the papers it matches, best first."""
        index = Index(papers)
        results: dict[str, list[Hit]] = {}
        for line in interests:
            query = parse(line)
            if query.canonical in results:
                continue
            ranked = rank(index, query)
            results[query.canonical] = [
                Hit(papers[doc].id, round(float(score), 6), matched_terms(index, ranked, doc))
                for doc, score in zip(ranked.docs.tolist(), ranked.scores.tolist(), strict=True)
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


def evaluate(index: Index, canonicals: Iterable[str]) -> Evaluated:
    """Evaluate each distinct interest once; `keys[i]` is the canonical form of row i."""
    keys = list(dict.fromkeys(canonicals))
    return Evaluated(index.size, keys, [rank(index, parse(key)) for key in keys])


@dataclass
class FanOut:
    """Per subscriber (CSR by `ptr`): chosen papers best first, their scores, the line
    (position in the subscriber's list) that scored each best, and how many matched."""

    ptr: Ints
    docs: Ints
    scores: Floats
    lines: Ints
    matched: Ints


def _ranges(starts: Ints, lengths: Ints) -> Ints:
    """Concatenated aranges: starts[i] .. starts[i] + lengths[i]."""
    total = int(lengths.sum())
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + np.arange(total) - offsets


def fan_out(
    evaluated: Evaluated,
    line_ptr: Ints,
    line_rows: Ints,
    limits: Ints,
    *,
    chunk: int = 65536,
) -> FanOut:
    """Serve every subscriber from the evaluated interests: top `limits[s]` over all their
    lines (a paper counts once, with its best score), and the number of papers matched.

    Subscriber s has lines `line_rows[line_ptr[s]:line_ptr[s + 1]]` (rows of `evaluated`).
    Only each interest's top max(limits) hits can reach any top list, so only they are
    expanded; the matched count comes from OR-ing the lines' bitsets.
    """
    top = int(limits.max()) if len(limits) else 0
    lengths = np.array([min(len(r.docs), top) for r in evaluated.ranked], dtype=np.int64)
    hit_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    hit_docs = np.concatenate([r.docs[:top] for r in evaluated.ranked] + [np.zeros(0, np.int64)])
    hit_scores = np.concatenate([r.scores[:top] for r in evaluated.ranked] + [np.zeros(0)])
    subscribers = len(line_ptr) - 1
    parts: list[tuple[Ints, Ints, Floats, Ints, Ints]] = []
    for first in range(0, subscribers, chunk):
        last = min(first + chunk, subscribers)
        parts.append(
            _fan_chunk(evaluated, line_ptr, line_rows, limits, first, last, hit_ptr, hit_docs,
                       hit_scores, lengths)
        )  # fmt: skip
    counts = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    return FanOut(
        ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        docs=np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64),
        scores=np.concatenate([p[2] for p in parts]) if parts else np.zeros(0),
        lines=np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, np.int64),
        matched=np.concatenate([p[4] for p in parts]) if parts else np.zeros(0, np.int64),
    )


def _fan_chunk(
    evaluated: Evaluated,
    line_ptr: Ints,
    line_rows: Ints,
    limits: Ints,
    first: int,
    last: int,
    hit_ptr: Ints,
    hit_docs: Ints,
    hit_scores: Floats,
    lengths: Ints,
) -> tuple[Ints, Ints, Floats, Ints, Ints]:
    lo, hi = int(line_ptr[first]), int(line_ptr[last])
    rows = line_rows[lo:hi]
    owner = np.repeat(np.arange(last - first), np.diff(line_ptr[first : last + 1]))
    position = np.arange(lo, hi) - np.repeat(
        line_ptr[first:last], np.diff(line_ptr[first : last + 1])
    )
    # Every (subscriber, line, hit) of the chunk, then the best line per (subscriber, paper).
    entries = _ranges(hit_ptr[rows], lengths[rows])
    per_line = lengths[rows]
    sub = np.repeat(owner, per_line)
    line = np.repeat(position, per_line)
    doc = hit_docs[entries]
    score = hit_scores[entries]
    order = np.lexsort((-score, doc, sub))
    sub, doc, score, line = sub[order], doc[order], score[order], line[order]
    first_of_pair = np.ones(len(sub), dtype=bool)
    first_of_pair[1:] = (sub[1:] != sub[:-1]) | (doc[1:] != doc[:-1])
    sub, doc, score, line = (
        sub[first_of_pair],
        doc[first_of_pair],
        score[first_of_pair],
        line[first_of_pair],
    )
    order = np.lexsort((doc, -score, sub))
    sub, doc, score, line = sub[order], doc[order], score[order], line[order]
    starts = np.searchsorted(sub, np.arange(last - first))
    rank_in_sub = np.arange(len(sub)) - starts[sub]
    keep = rank_in_sub < limits[first:last][sub]
    counts = np.bincount(sub[keep], minlength=last - first).astype(np.int64)
    matched = _matched(evaluated, rows, owner, last - first)
    return counts, doc[keep], score[keep], line[keep], matched


def _matched(evaluated: Evaluated, rows: Ints, owner: Ints, subscribers: int) -> Ints:
    """How many distinct papers each subscriber's lines match: popcount of their OR."""
    matched = np.zeros(subscribers, dtype=np.int64)
    if not len(rows):
        return matched
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    combined = np.bitwise_or.reduceat(evaluated.bitsets()[rows], starts, axis=0)
    matched[owner[starts]] = np.bitwise_count(combined).sum(axis=1)
    return matched
