"""Related terms: significant terms are those of their plain definition (count every key of
the matches, search every key's background), however few backgrounds are searched."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from digest.match.engine import rank
from digest.match.index import Index, PaperDoc, loose_key
from digest.match.query import Query, Term, parse
from digest.match.suggest import (
    _SKIP,
    MAX_FOREGROUND,
    MIN_BATCH,
    MIN_COUNT,
    MIN_LIFT,
    MIN_SHARE,
    Keys,
    significant_terms,
)

TOPICS = [  # with acronyms, known (LLM, MoE) and defined (GNN), and words inside phrases
    ["graph", "neural", "networks", "(GNNs)", "GNN", "message", "passing", "message", "edge"],
    ["diffusion", "model", "denoising", "score", "matching", "score", "image", "sampling"],
    ["quantum", "circuit", "qubit", "noise", "error", "correction", "gate", "error"],
    ["large", "language", "model", "LLM", "reasoning", "prompt", "LLMs", "chain", "thought"],
    ["sparse", "mixture", "of", "experts", "MoE", "routing", "expert", "load", "balance"],
]
COMMON = ["method", "results", "propose", "performance", "training", "data", "learning"]


def _papers(rng: np.random.Generator, count: int) -> list[PaperDoc]:
    """Papers of one topic each (its words in runs, so pairs recur), with common words, and
    some copies (so that many keys tie)."""
    papers: list[PaperDoc] = []
    while len(papers) < count:
        topic = TOPICS[int(rng.integers(len(TOPICS)))]

        def text(n: int, topic: list[str] = topic) -> str:
            words: list[str] = []
            while len(words) < n:
                start = int(rng.integers(len(topic) - 1))
                words += (
                    topic[start : start + 2] if rng.random() < 0.6 else [str(rng.choice(COMMON))]
                )
            return " ".join(words)

        title, abstract = text(5).capitalize(), text(40)
        for _ in range(int(rng.choice([1, 1, 1, 4]))):
            papers.append(PaperDoc(len(papers) + 1, title, abstract))
    return papers


def _plain(index: Index, query: Query, limit: int = 5) -> list[tuple[str, str]]:
    """Significant terms by their definition, every candidate's background searched."""
    docs = rank(index, query, keep=MAX_FOREGROUND).docs.tolist()
    if len(docs) < MIN_COUNT or index.size < max(MIN_BATCH, 4 * len(docs)):
        return []
    counts: Counter[tuple[str, ...]] = Counter()
    spelling: dict[tuple[str, ...], str] = {}
    for doc in docs:
        seen: set[tuple[str, ...]] = set()
        for name in ("title", "abstract"):
            field = index.fields[name]
            words = field.words()
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
    own = {stem for term in query.terms for stem in loose_key(term.words)}
    for term in query.terms:
        own |= {stem for words in index.family(term.words) or () for stem in loose_key(words)}
    scored = []
    for key, count in counts.items():
        share = count / len(docs)
        if share < MIN_SHARE or count < MIN_COUNT or set(key) <= own:
            continue
        background = len(index.term(Term("", tuple(spelling[key].split()))).docs)
        lift = share / max(background / index.size, 1e-9)
        if lift >= MIN_LIFT:
            scored.append((share * math.log(lift), spelling[key], count))
    scored.sort(key=lambda item: (-item[0], item[1]))
    chosen: list[tuple[str, str]] = []
    for _, text, count in scored:
        if any(text in other or other in text for other, _ in chosen):
            continue
        chosen.append((text, f"in {count} of the papers matched"))
        if len(chosen) == limit:
            break
    return chosen


LINES = [
    "graph",
    "neural network",
    "diffusion",
    "score matching",
    '"denoising diffusion"',
    "quantum error",
    "language model",
    "reasoning OR prompt",
    "sparse -routing",
    "mixture of experts",
    "model",
    "chain",
    "GNN",
    "LLM reasoning",
    "message",
]


def test_significant_terms_are_those_of_the_plain_definition() -> None:
    offered = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        index = Index(_papers(rng, 300))
        keys = Keys(index)
        for line in LINES:
            query = parse(line)
            expected = _plain(index, query)
            found = significant_terms(index, query, keys=keys)
            assert [(r.text, r.reason) for r in found] == expected, line
            offered += len(expected)
    assert offered > 50  # the batches do have significant terms to find


def test_keys_count_papers_and_keep_the_spelling_met_first() -> None:
    papers = [
        PaperDoc(1, "Networks of graphs", "Networks learn."),
        PaperDoc(2, "Network graph", "A network."),
    ]
    keys = Keys(Index(papers))
    for docs, spelled in (([0, 1], "networks"), ([1, 0], "network")):
        numbers, counts, texts = keys.counts(docs, 1)
        found = {
            keys.keys[n]: (c, keys.texts[t])
            for n, c, t in zip(numbers.tolist(), counts.tolist(), texts.tolist(), strict=True)
        }
        assert found[("network",)] == (2, spelled)
        assert found[("graph",)][0] == 2
    numbers, _, _ = keys.counts([0, 1], 2)
    assert {keys.keys[n] for n in numbers.tolist()} == {("network",), ("graph",)}
