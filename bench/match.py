"""Benchmark the matching engine on a synthetic population built from real papers.

    .venv/bin/python bench/match.py [--subscribers 1000000] [--papers 5000] [--naive 40]

Interest lines are drawn from the vocabulary of ../shared/data/papers.jsonl (words by
document-frequency rank, phrases from titles, acronyms, OR, exclusions, title:), and
subscribers draw 1 to 8 lines each from that pool with Zipf popularity. Papers are
synthetic: a real title and sentences from three real abstracts. The engine (index,
evaluate every distinct line once, rank, fan out top-N) is timed against a naive
per-subscriber loop on a subset, and both against a fixed calibration workload measured
in the same run, so that figures from a loaded machine stay comparable.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from digest.match.acronyms import curated
from digest.match.engine import evaluate, fan_out
from digest.match.index import Index, PaperDoc
from digest.match.naive import matches
from digest.match.query import InterestError, parse
from digest.match.text import analyse

ROOT = Path(__file__).resolve().parents[1]
PAPERS = Path(os.environ.get("DIGEST_SHARED_DIR", ROOT.parent / "shared")) / "data" / "papers.jsonl"
_STOP_WORDS = (
    "a an and are as at be by for from has have in is it its of on or that the this to we "
    "with our which can these their than such not also more into over both"
)
STOP = set(_STOP_WORDS.split())
NAMES = [
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Émilie du Châtelet",
    "Yann LeCun",
    "Fei-Fei Li",
]
MAX_SHARE = 0.02
CATEGORIES = [
    "cs.LG",
    "cs.CL",
    "cs.CV",
    "cs.AI",
    "stat.ML",
    "quant-ph",
    "q-bio.NC",
    "physics.comp-ph",
]


def load_corpus() -> list[dict[str, str]]:
    """The distinct real papers of the shared data set."""
    seen: dict[str, dict[str, str]] = {}
    for line in PAPERS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        seen.setdefault(record["title"], record)
    return list(seen.values())


def make_papers(
    corpus: list[dict[str, str]], count: int, rng: np.random.Generator
) -> list[PaperDoc]:
    """Synthetic papers: a real title, and sentences drawn from three real abstracts."""
    sentences = [re.split(r"(?<=\.)\s+", paper["abstract"]) for paper in corpus]
    papers = []
    for number in range(count):
        title = corpus[int(rng.integers(len(corpus)))]["title"]
        parts = []
        for source in rng.integers(len(corpus), size=3):
            chosen = sentences[int(source)]
            start = int(rng.integers(len(chosen)))
            parts.extend(chosen[start : start + 2])
        authors = tuple(NAMES[int(i)] for i in rng.integers(len(NAMES), size=2))
        categories = (CATEGORIES[int(rng.integers(len(CATEGORIES)))],)
        upvotes = int(rng.integers(100)) if rng.random() < 0.2 else None
        papers.append(PaperDoc(number + 1, title, " ".join(parts), upvotes, authors, categories))
    return papers


def zipf_choice(size: int, draws: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """`draws` ranks in [0, size) with probability proportional to 1 / (rank + 1) ** exponent."""
    weights = 1.0 / np.arange(1, size + 1) ** exponent
    cumulative = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cumulative, rng.random(draws)), size - 1)


def make_pool(corpus: list[dict[str, str]], size: int, rng: np.random.Generator) -> list[str]:
    """Distinct valid interest lines, most popular first."""
    df: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for paper in corpus:
        words = analyse(paper["title"] + " " + paper["abstract"])[0]
        df.update({w for w in words if w not in STOP and len(w) > 2 and not w.isdigit()})
        title = analyse(paper["title"])[0]
        bigrams.update(f'"{a} {b}"' for a, b in itertools.pairwise(title)
                       if a not in STOP and b not in STOP)  # fmt: skip
    # Topical words: in at least 3 real papers, and in at most MAX_SHARE of them ("model",
    # "designing" are nobody's interest on their own); the most common are the most popular.
    ranked = sorted(df.items(), key=lambda item: (-item[1], item[0]))
    vocab = [w for w, n in ranked if 3 <= n <= MAX_SHARE * len(corpus)]
    phrases = [p for p, _ in bigrams.most_common()]
    acronyms = [a.upper() for a in curated()]
    lines: dict[str, None] = {}
    while len(lines) < size:

        def term() -> str:
            roll = rng.random()
            if roll < 0.2:
                return phrases[int(zipf_choice(len(phrases), 1, 1.0, rng)[0])]
            if roll < 0.3:
                return acronyms[int(rng.integers(len(acronyms)))]
            return vocab[int(zipf_choice(len(vocab), 1, 0.9, rng)[0])]

        count = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
        terms = [term() for _ in range(count)]
        roll = rng.random()
        if roll < 0.08:
            terms[0] = f"({terms[0]} OR {term()})"
        elif roll < 0.14:
            terms.append(f"-{term()}")
        elif roll < 0.18:
            terms[0] = f"title:{terms[0]}"
        line = " ".join(terms)
        try:
            lines.setdefault(parse(line).canonical)
        except InterestError:
            continue
    return list(lines)


def calibrate(rng: np.random.Generator) -> float:
    """A fixed workload (numpy sort of 5M floats + 2M Python dict updates), wall seconds."""
    values = rng.random(5_000_000)
    start = time.perf_counter()
    np.sort(values)
    table: dict[int, int] = {}
    for i in range(2_000_000):
        table[i & 0xFFFF] = i
    return time.perf_counter() - start


def naive(
    index: Index, lines: list[list[str]], limits: list[int]
) -> tuple[list[list[tuple[int, float]]], float]:
    """The per-subscriber loop: every line of every subscriber against every paper."""
    start = time.perf_counter()
    chosen = []
    for subscriber, own in enumerate(lines):
        best: dict[int, float] = {}
        for line in own:
            query = parse(line)
            terms = query.terms
            for doc in range(index.size):
                if matches(index, query.root, doc):
                    score = sum(
                        float(index.term(t).scores[np.searchsorted(index.term(t).docs, doc)])
                        for t in terms
                        if index.term(t).bits >> doc & 1
                    ) * float(index.boost[doc])
                    best[doc] = max(best.get(doc, 0.0), score)
        ranked = sorted(best, key=lambda d: (-best[d], d))
        chosen.append([(d, best[d]) for d in ranked[: limits[subscriber]]])
    return chosen, time.perf_counter() - start


def main() -> None:
    """Generate, run, check the engine against the naive loop, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--papers", type=int, default=5_000)
    parser.add_argument("--pool", type=int, default=200_000, help="distinct lines to draw from")
    parser.add_argument("--naive", type=int, default=40, help="subscribers in the naive subset")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    baseline = calibrate(rng)

    corpus = load_corpus()
    papers = make_papers(corpus, args.papers, rng)
    pool = make_pool(corpus, args.pool, rng)
    counts = rng.integers(1, 9, size=args.subscribers)
    line_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    picks = zipf_choice(len(pool), int(line_ptr[-1]), 1.0, rng)
    limits = rng.choice([5, 10, 20, 50], p=[0.2, 0.4, 0.3, 0.1], size=args.subscribers)
    limits = limits.astype(np.int64)
    used, line_rows = np.unique(picks, return_inverse=True)
    canonicals = [pool[int(i)] for i in used]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    cpu = time.process_time()
    start = time.perf_counter()
    index = Index(papers)
    indexed = time.perf_counter()
    evaluated = evaluate(index, canonicals, keep=int(limits.max()))
    matched = time.perf_counter()
    served = fan_out(evaluated, line_ptr, line_rows.astype(np.int64), limits)
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    baseline = (baseline + calibrate(rng)) / 2  # before and after: the load changes
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    subset = range(min(args.naive, args.subscribers))
    lines = [[canonicals[int(r)] for r in line_rows[line_ptr[s] : line_ptr[s + 1]]] for s in subset]
    reference, naive_seconds = naive(index, lines, [int(limits[s]) for s in subset])
    for s in subset:
        # Equal scores may be ordered differently at the limit: compare the score lists.
        engine_scores = served.scores[served.ptr[s] : served.ptr[s + 1]]
        naive_scores = [score for _, score in reference[s]]
        if len(engine_scores) != len(naive_scores) or not np.allclose(engine_scores, naive_scores):
            sys.exit(f"subscriber {s}: engine and naive loop disagree")

    total = done - start
    per_subscriber_engine = total / args.subscribers
    per_subscriber_naive = naive_seconds / len(subset)
    print(json.dumps({
        "subscribers": args.subscribers,
        "papers": args.papers,
        "interest_lines": int(line_ptr[-1]),
        "distinct_interests": len(canonicals),
        "chosen_papers": len(served.docs),
        "mean_matched_per_subscriber": round(float(served.matched.mean()), 1),
        "index_s": round(indexed - start, 2),
        "evaluate_s": round(matched - indexed, 2),
        "fan_out_s": round(done - matched, 2),
        "total_s": round(total, 2),
        "total_cpu_s": round(cpu, 2),
        "peak_rss_mb": round(rss),
        "rss_before_engine_mb": round(rss_before),
        "calibration_s": round(baseline, 3),
        "total_in_calibration_units": round(total / baseline, 1),
        "naive_subscribers": len(subset),
        "naive_s": round(naive_seconds, 2),
        "speedup_per_subscriber": round(per_subscriber_naive / per_subscriber_engine),
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
