"""Email size and rendering cost, on real titles and abstracts (../shared/data/papers.jsonl).

Size: bytes of the HTML part (Gmail clips past 102 KB), the text part and the whole
message, for digests of 10, 20, 50 and 100 papers, with the default size limit off and on.
Speed: rendering a 20-paper digest with CSS inlining, as a ratio against the same
templates rendered without inlining (the baseline), both measured in this run.

Run: .venv/bin/python bench/email_size.py
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from markupsafe import Markup

from digest.config import Settings
from digest.mail.message import compose
from digest.mail.render import DigestView, PaperView, Renderer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "papers.jsonl"
INTERESTS = ["language models", "diffusion", "reinforcement learning", "graph", "vision"]


def papers() -> list[PaperView]:
    """Real papers, each given the first interest whose first word it mentions."""
    views = []
    for n, line in enumerate(DATA.read_text(encoding="utf-8").splitlines()):
        record = json.loads(line)
        text = (record["title"] + " " + record["abstract"]).lower()
        interest = next((i for i in INTERESTS if i.split()[0] in text), INTERESTS[-1])
        views.append(
            PaperView(
                title=record["title"],
                abstract=record["abstract"],
                url=f"https://arxiv.org/abs/2605.{n:05d}",
                authors=("Ada Lovelace", "Grace Hopper", "Alan Turing", "Kurt Gödel"),
                categories=("cs.LG", "cs.CL"),
                interest=interest,
                terms=(interest, interest.split()[0]),
                upvotes=n % 40,
                pdf_url=f"https://arxiv.org/pdf/2605.{n:05d}",
                hf_url=f"https://huggingface.co/papers/2605.{n:05d}",
                code_url="https://github.com/example/code" if n % 2 else None,
            )
        )
    return views


def view(chosen: list[PaperView]) -> DigestView:
    """A digest holding `chosen`, grouped as planning would (best interest first)."""
    ordered = sorted(chosen, key=lambda p: INTERESTS.index(p.interest))
    return DigestView(
        email="reader@example.org",
        period="2026-11-26",
        papers=ordered,
        interests=list(dict.fromkeys(p.interest for p in ordered)),
        unsubscribe_url="https://digest.example.org/unsubscribe/" + "t" * 60,
        preferences_url="https://digest.example.org/preferences/" + "t" * 60,
        more_url="https://digest.example.org/digests/" + "t" * 60 + "/1",
    )


def main() -> None:
    """Print the size table and the speed ratio."""
    if not DATA.exists():
        sys.exit(f"{DATA} is absent")
    settings = Settings(from_="Paper Digest <digest@digest.example.org>")
    unlimited = Renderer(settings.model_copy(update={"email_max_bytes": 10**9}))
    limited = Renderer(settings)
    pool = papers()
    print("papers | HTML KB (no limit) | HTML KB | shown | text KB | message KB")
    for count in (10, 20, 50, 100):
        digest = view(pool[:count])
        raw = unlimited.digest(digest)
        cut = limited.digest(digest)
        message = compose(
            cut,
            to="reader@example.org",
            settings=settings,
            message_id="<bench@digest.example.org>",
            date=datetime.now(UTC),
            unsubscribe_url=digest.unsubscribe_url,
        )
        print(
            f"{count:6} | {len(raw.html.encode()) / 1000:18.1f} | "
            f"{len(cut.html.encode()) / 1000:7.1f} | {cut.shown:5} | "
            f"{len(cut.text.encode()) / 1000:7.1f} | {len(message) / 1000:10.1f}"
        )

    digest = view(pool[:20])
    plain = Renderer(settings)
    plain_template = plain.env.get_template("email/digest.html")
    card = plain.env.get_template("email/_paper.html")
    context = {
        "digest": digest,
        "subject": "s",
        "settings": settings,
        "list_name": "x",
        # Each paper's card rendered in place, not inlined: the templates alone.
        "paper_html": lambda paper: Markup(card.render(paper=paper)),
    }

    def baseline() -> None:
        plain_template.render(context)

    def inlined() -> None:
        limited.digest(replace(digest))

    rounds = 200
    timings = {}
    for name, work in (("baseline", baseline), ("inlined", inlined)):
        work()
        start = time.perf_counter()
        for _ in range(rounds):
            work()
        timings[name] = (time.perf_counter() - start) / rounds
    print(
        f"20-paper digest: template only {timings['baseline'] * 1000:.2f} ms, "
        f"full render (text + HTML + inlining) {timings['inlined'] * 1000:.2f} ms, "
        f"ratio {timings['inlined'] / timings['baseline']:.1f}x"
    )


if __name__ == "__main__":
    main()
