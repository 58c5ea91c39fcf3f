"""The bulk path: each distinct interest evaluated once, then fanned out to a population
with numpy; it must give every subscriber exactly what a per-subscriber loop gives."""

from __future__ import annotations

import numpy as np

from digest.match.engine import (
    Evaluated,
    InterestMatcher,
    evaluate,
    every_why,
    fan_out,
    matched_terms,
    rank,
)
from digest.match.index import Index, PaperDoc
from digest.match.query import parse

WORDS = [
    "graph",
    "neural",
    "network",
    "diffusion",
    "model",
    "quantum",
    "llm",
    "moe",
    "sparse",
    "attention",
]


def _papers(rng: np.random.Generator, count: int) -> list[PaperDoc]:
    def text(n: int) -> str:
        return " ".join(WORDS[int(i)] for i in rng.integers(len(WORDS), size=n))

    return [
        PaperDoc(i + 100, text(4), text(20), int(rng.integers(50)) or None) for i in range(count)
    ]


LINES = [
    "graph",
    "neural network",
    '"graph neural"',
    "quantum -llm",
    "moe OR sparse",
    "title:attention",
    "diffusion model -title:graph",
    "(llm OR moe) attention",
    "nothingmatchesthis",
]


def _expected(
    evaluated: Evaluated, rows: list[int], limit: int
) -> tuple[list[int], list[float], list[int], int]:
    best: dict[int, tuple[float, int]] = {}
    for position, row in enumerate(rows):
        ranked = evaluated.ranked[row]
        for doc, score in zip(ranked.docs.tolist(), ranked.scores.tolist(), strict=True):
            if doc not in best or score > best[doc][0]:
                best[doc] = (score, position)
    ordered = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
    return (
        [doc for doc, _ in ordered],
        [score for _, (score, _) in ordered],
        [position for _, (_, position) in ordered],
        len(best),
    )


def test_fan_out_equals_a_per_subscriber_loop() -> None:
    rng = np.random.default_rng(7)
    index = Index(_papers(rng, 300))
    evaluated = evaluate(index, LINES)
    counts = rng.integers(0, 6, size=500)
    line_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    line_rows = rng.integers(len(LINES), size=int(line_ptr[-1])).astype(np.int64)
    limits = rng.choice([1, 3, 10, 400], size=500).astype(np.int64)
    served = fan_out(evaluated, line_ptr, line_rows, limits, chunk=64)
    for s in range(500):
        rows = line_rows[line_ptr[s] : line_ptr[s + 1]].tolist()
        docs, scores, positions, matched = _expected(evaluated, rows, int(limits[s]))
        part = slice(served.ptr[s], served.ptr[s + 1])
        assert served.docs[part].tolist() == docs
        assert np.allclose(served.scores[part], scores)
        assert served.lines[part].tolist() == positions
        assert served.matched[s] == matched
    assert served.matched.max() > limits.min()  # some digests were cut


def test_bounded_hit_lists_serve_the_same_digests() -> None:
    rng = np.random.default_rng(8)
    index = Index(_papers(rng, 200))
    full, bounded = evaluate(index, LINES), evaluate(index, LINES, keep=5)
    assert max(len(r.docs) for r in bounded.ranked) == 5
    line_ptr = np.array([0, 3, 5, 9], dtype=np.int64)
    line_rows = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8], dtype=np.int64)
    limits = np.array([5, 2, 5], dtype=np.int64)
    a = fan_out(full, line_ptr, line_rows, limits)
    b = fan_out(bounded, line_ptr, line_rows, limits)
    assert a.docs.tolist() == b.docs.tolist()
    assert a.matched.tolist() == b.matched.tolist()
    assert a.matched.tolist()[0] > 5


def test_each_distinct_interest_is_one_row() -> None:
    index = Index(_papers(np.random.default_rng(9), 20))
    evaluated = evaluate(index, ["graph", "Graph", "moe OR sparse", "sparse OR moe"])
    assert evaluated.keys == ["graph", "(moe OR sparse)"]
    empty = fan_out(evaluated, np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert len(empty.docs) == 0 and len(empty.matched) == 0


def test_the_terms_that_matched_are_found_for_every_hit_at_once() -> None:
    papers = _papers(np.random.default_rng(3), 300)
    index = Index(papers)
    for line in [*LINES, "graph OR quantum OR diffusion", "like:105", "neural -title:graph"]:
        ranked = rank(index, parse(line))
        assert every_why(index, ranked) == [
            matched_terms(index, ranked, doc) for doc in ranked.docs.tolist()
        ], line
    hits = InterestMatcher().match(papers, ["quantum OR title:attention"])
    assert {hit.terms for hit in hits["quantum OR title:attention"]} == {
        ("quantum",),
        ("title:attention",),
        ("quantum", "title:attention"),
    }
