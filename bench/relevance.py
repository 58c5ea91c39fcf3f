"""Relevance of interest lines on graded judgments over the shared papers.jsonl.

    .venv/bin/python bench/relevance.py [--stemmer light] [--window 3] [--relevant 1]
                                        [--per-query] [--json]

bench/judgments.json holds real interests (phrases, acronyms with their long forms,
exclusions, `like:` seeds), each with what the researcher means and the papers graded
0/1/2 on that meaning; papers are named by title and the `like:N` seeds by their position
among the file's distinct titles (0-based). Papers outside a judged pool count as 0.

For every query it prints precision, recall and F1 (relevant = grade >= 1) of digest's
matches and of the baseline, a case-insensitive substring AND of the words (`-word`
excludes), then the macro averages, digest's precision and nDCG of its first 10, and the
largest F1 gap between an acronym and its long form (they share one set of judgments).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.match import index as index_module  # noqa: E402
from digest.match import (  # noqa: E402
    like,
    taste,
    text,
)
from digest.match.engine import rank  # noqa: E402
from digest.match.index import Index, PaperDoc  # noqa: E402
from digest.match.query import parse  # noqa: E402

SHARED = Path(os.environ.get("DIGEST_SHARED_DIR", ROOT.parent / "shared"))
PAPERS = SHARED / "data" / "papers.jsonl"
JUDGMENTS = ROOT / "bench" / "judgments.json"


def load_papers(path: Path = PAPERS) -> list[PaperDoc]:
    """The file's distinct papers (by title), numbered from 0 in order of first appearance."""
    seen: set[str] = set()
    docs: list[PaperDoc] = []
    for line in path.read_text("utf-8").splitlines():
        paper = json.loads(line)
        if paper["title"] in seen:
            continue
        seen.add(paper["title"])
        docs.append(PaperDoc(len(docs), paper["title"], paper["abstract"]))
    return docs


@dataclass(frozen=True)
class Score:
    """One query's figures."""

    retrieved: int
    precision: float
    recall: float
    f1: float


def score(found: list[int], relevant: set[int]) -> Score:
    """Precision, recall and F1 of a retrieved set (an empty set has precision 0)."""
    hits = len(set(found) & relevant)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(relevant) if relevant else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(len(found), precision, recall, f1)


def ndcg(ranked: list[int], grades: dict[int, int], k: int = 10) -> float:
    """nDCG@k with gains 2^grade - 1."""
    gain = sum((2 ** grades.get(doc, 0) - 1) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    best = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return gain / best if best else 0.0


def substring(papers: list[PaperDoc], line: str) -> list[int] | None:
    """The baseline: every word a substring of title + abstract (case-insensitive)."""
    if ":" in line or "OR" in line.split():
        return None
    wanted = [w.lower() for w in line.split() if not w.startswith("-") and w != "AND"]
    unwanted = [w[1:].lower() for w in line.split() if w.startswith("-") and len(w) > 1]
    found = []
    for paper in papers:
        body = f"{paper.title} {paper.abstract}".lower()
        if all(w in body for w in wanted) and not any(w in body for w in unwanted):
            found.append(paper.id)
    return found


def evaluate(papers: list[PaperDoc], judgments: list[dict], threshold: int = 1) -> dict:
    """Every query's figures, the macro averages and the acronym gap (relevant: grade >=
    `threshold`)."""
    by_title = {paper.title: paper.id for paper in papers}
    index = Index(papers)
    rows = []
    gap = (0.0, "")
    for interest in judgments:
        grades = {by_title[title]: grade for title, grade in interest["grades"].items()}
        relevant = {doc for doc, grade in grades.items() if grade >= threshold}
        f1s = []
        for line in interest["queries"]:
            ranked = rank(index, parse(line))
            found = [papers[doc].id for doc in ranked.docs.tolist()]
            ours = score(found, relevant)
            baseline = substring(papers, line)
            rows.append(
                {
                    "interest": interest["id"],
                    "query": line,
                    "relevant": len(relevant),
                    "digest": ours.__dict__,
                    "baseline": None if baseline is None else score(baseline, relevant).__dict__,
                    "p_at_10": sum(1 for doc in found[:10] if doc in relevant) / 10,
                    "ndcg_at_10": ndcg(found, grades),
                }
            )
            f1s.append(ours.f1)
        if len(f1s) > 1 and max(f1s) - min(f1s) > gap[0]:
            gap = (max(f1s) - min(f1s), " / ".join(interest["queries"]))

    def macro(key: str, rows: list[dict]) -> dict[str, float]:
        scored = [row[key] for row in rows if row[key] is not None]
        return {
            name: sum(s[name] for s in scored) / len(scored)
            for name in ("precision", "recall", "f1")
        }

    comparable = [row for row in rows if row["baseline"] is not None]
    return {
        "queries": rows,
        "digest": macro("digest", rows),
        "digest_comparable": macro("digest", comparable),
        "baseline": macro("baseline", comparable),
        "p_at_10": sum(row["p_at_10"] for row in rows) / len(rows),
        "ndcg_at_10": sum(row["ndcg_at_10"] for row in rows) / len(rows),
        "acronym_gap": {"f1": gap[0], "pair": gap[1]},
    }


FIRST_DIGEST = 10  # the papers a reader sees before giving feedback
CLICKS = 3  # "More like this" on this many relevant papers, "Not for me" on as many others


def _with_feedback(
    index: Index, ranked: list[int], scores: dict[int, float], grades: dict[int, int]
) -> tuple[list[int], list[int]] | None:
    """The next digest (ids, best first) without and with the reader's feedback."""
    first = ranked[:FIRST_DIGEST]
    liked = [doc for doc in first if grades.get(doc, 0) >= 1][:CLICKS]
    disliked = [doc for doc in first if grades.get(doc, 0) == 0][:CLICKS]
    rest = [doc for doc in ranked if doc not in set(first)]
    if not rest or not (liked or disliked):
        return None

    def similar(seed: int) -> dict[int, float]:
        total, _ = like.likeness(index, str(seed))
        return taste.similarities((index.papers[d].id, float(total[d])) for d in total.nonzero()[0])

    likes = {seed: similar(seed) for seed in liked}
    dislikes = {seed: similar(seed) for seed in disliked}
    moved = {doc: scores[doc] * taste.nudge(doc, likes, dislikes).factor for doc in rest}
    top = max(moved.values())
    seen = set(first)
    for doc, _, value in taste.extras(likes, set(ranked), lambda d: d not in seen, dislikes):
        moved[doc] = top * value
    after = sorted(moved, key=lambda doc: (-moved[doc], doc))
    return rest[:FIRST_DIGEST], after[:FIRST_DIGEST]


def feedback_gain(papers: list[PaperDoc], judgments: list[dict], threshold: int = 1) -> dict:
    """Precision of the next digest's first 10 and of all of it, without and with a
    reader's CLICKS likes of relevant papers and CLICKS dislikes of others in the first."""
    by_title = {paper.title: paper.id for paper in papers}
    index = Index(papers)
    rows = []
    for interest in judgments:
        grades = {by_title[t]: g for t, g in interest["grades"].items()}
        for line in interest["queries"]:
            found = rank(index, parse(line))
            ranked = [papers[d].id for d in found.docs.tolist()]
            scores = dict(zip(ranked, found.scores.tolist(), strict=True))
            pair = _with_feedback(index, ranked, scores, grades)
            if pair is None:
                continue
            row: dict[str, object] = {"query": line}
            for name, digest in zip(("without", "with"), pair, strict=True):
                good = [grades.get(doc, 0) >= threshold for doc in digest]
                row[f"{name}_p10"] = sum(good[:10]) / 10
                row[f"{name}_p"] = sum(good) / len(good) if good else 0.0
            rows.append(row)

    def mean(key: str) -> float:
        return sum(float(r[key]) for r in rows) / len(rows) if rows else 0.0  # type: ignore[arg-type]

    keys = ("without_p10", "with_p10", "without_p", "with_p")
    return {"queries": rows, **{key: mean(key) for key in keys}}


def _line(name: str, figures: dict[str, float]) -> str:
    return (
        f"{name:<34} P {figures['precision']:.3f}  R {figures['recall']:.3f}  "
        f"F1 {figures['f1']:.3f}"
    )


def _other_stemmers() -> None:
    """Offer Snowball (PyStemmer) and Lucene's KStem (krovetzstemmer) for comparison, when
    installed (`pip install PyStemmer krovetzstemmer`)."""
    try:
        import Stemmer

        text.STEMMERS["snowball"] = Stemmer.Stemmer("english").stemWord
    except ImportError:
        pass
    try:
        import krovetzstemmer  # type: ignore[import-not-found]

        text.STEMMERS["kstem"] = krovetzstemmer.Stemmer().stem
    except ImportError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _other_stemmers()
    parser.add_argument("--stemmer", default="light", choices=sorted(text.STEMMERS))
    parser.add_argument("--window", type=int, default=index_module.WINDOW)
    parser.add_argument("--relevant", type=int, default=1, choices=(1, 2), help="lowest grade")
    parser.add_argument("--per-query", action="store_true", help="print every query")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not PAPERS.exists():
        sys.exit(f"error: {PAPERS} is absent (set DIGEST_SHARED_DIR)")
    text.use_stemmer(args.stemmer)
    index_module.WINDOW = args.window
    judgments = json.loads(JUDGMENTS.read_text("utf-8"))
    papers = load_papers()
    result = evaluate(papers, judgments, args.relevant)
    result["feedback"] = feedback_gain(papers, judgments, args.relevant)
    result["settings"] = {
        "stemmer": args.stemmer,
        "window": args.window,
        "relevant": f"grade >= {args.relevant}",
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    if args.per_query:
        for row in result["queries"]:
            base = row["baseline"]
            shown = "      -" if base is None else f"{base['f1']:.2f} ({base['retrieved']})"
            ours = row["digest"]
            print(
                f"{row['query']:<34} rel {row['relevant']:>3}  digest P {ours['precision']:.2f} "
                f"R {ours['recall']:.2f} F1 {ours['f1']:.2f} ({ours['retrieved']:>3})  "
                f"baseline F1 {shown}"
            )
        print()
    print(f"{len(judgments)} interests, {len(result['queries'])} queries; {result['settings']}")
    print(_line("digest, every query", result["digest"]))
    print(_line("digest, queries the baseline runs", result["digest_comparable"]))
    print(_line("substring AND baseline", result["baseline"]))
    print(f"digest P@10 {result['p_at_10']:.3f}  nDCG@10 {result['ndcg_at_10']:.3f}")
    gap = result["acronym_gap"]
    print(f"largest acronym / long-form F1 gap: {gap['f1']:.3f} ({gap['pair']})")
    fb = result["feedback"]
    print(
        f"next digest after {CLICKS} likes and {CLICKS} dislikes in the first "
        f"{FIRST_DIGEST}, {len(fb['queries'])} queries: P@10 {fb['without_p10']:.3f} -> "
        f"{fb['with_p10']:.3f}, precision {fb['without_p']:.3f} -> {fb['with_p']:.3f}"
    )


if __name__ == "__main__":
    main()
