"""How a digest reads, through the real pipeline: highlights that prove the why, an excerpt
around the match, a why line that says what matched and where, headings without syntax."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import Engine

from digest.config import Settings
from digest.mail.text import excerpt, period_label, subject_for
from digest.match.query import parse, readable
from digest.sources.ingest import PaperIn, store
from digest.subscribers import subscribe
from tests.kit.mail import parts
from tests.kit.seeds import T0, send_digest
from tests.kit.smtp import SmtpSink

FILLER = "We describe the setting in detail and recall earlier work on the problem. " * 9


def test_highlights_excerpt_and_why_in_a_sent_digest(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    store(
        engine,
        [
            PaperIn(
                id="2411.00001",
                title="Judging answers with large language models",
                abstract="We ask large language models to grade answers.",
            ),
            PaperIn(
                id="2411.00002",
                title="Scaling Mixture-of-Experts routers",
                abstract=FILLER + "Our sparse mixture of experts routes tokens to experts.",
            ),
            PaperIn(id="2411.00003", title="Graph networks for traffic", abstract="Roads."),
        ],
        now=T0 - timedelta(hours=1),
    )
    lines = ["LLM", '"mixture of experts" -survey', "network"]
    subscribe(engine, "ada@example.org", lines, now=T0 - timedelta(days=1))
    send_digest(engine, settings, T0)
    (message,) = smtp.to("ada@example.org")
    text, html = parts(message)
    subject = re.fullmatch(r"3 new papers: (.+), (.+) and 1 more", message["Subject"])
    assert subject is not None
    assert {subject[1], subject[2]} < {"LLM", "mixture of experts", "network"}
    marked = {m.lower() for m in re.findall(r"<mark[^>]*>([^<]+)</mark>", html)}
    assert {"large language models", "mixture-of-experts", "mixture of experts"} <= marked
    assert "networks" in marked
    # The match sits past the first 400 characters: the excerpt is the window around it.
    assert "…Our sparse" in " ".join(text.split()) or "…We describe" in " ".join(text.split())
    assert "mixture of experts routes" in " ".join(text.split())
    flat = " ".join(text.split())
    assert "your interest “LLM”: “large language models” in the title and the abstract." in flat
    assert "your interest “network”: “networks” in the title." in flat
    assert "== mixture of experts (1) ==" in text  # no quotes, no -survey
    assert '"mixture of experts" -survey' in flat  # the line as typed, in the footer


def test_headings_and_subjects_are_readable() -> None:
    assert readable("(pruning OR sparsity) LLM") == "pruning or sparsity LLM"
    assert readable("cat:cs.CL diffusion") == "diffusion in cs.CL"
    assert readable('author:"Yann LeCun"') == "Yann LeCun"
    assert readable("LoRA -survey") == "LoRA"
    assert readable("diffusion -(survey OR review) robots") == "diffusion robots"
    # A line may name itself; the label changes nothing of what it matches.
    assert readable("LoRA -survey  # Adapters") == "Adapters"
    assert parse("LoRA -survey  # Adapters").canonical == parse("LoRA -survey").canonical
    assert readable("C# compilers") == "C# compilers"
    assert subject_for(5, ['"mixture of experts"', "LoRA -survey", "cat:CS.CL x"]) == (
        "5 new papers: mixture of experts, LoRA and 1 more"
    )


def test_the_excerpt_starts_where_the_match_is() -> None:
    text = FILLER + "Here state space models appear. " + FILLER
    short = excerpt(text, ['"state space models"'], 300)
    assert short.startswith("…") and "state space models" in short and len(short) <= 302
    assert excerpt("state space models first. " + FILLER, ["state"], 100).startswith("state")


def test_trending_brings_the_most_upvoted_and_says_so_when_none_is_known(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    def paper(n: int, upvotes: int | None, category: str) -> PaperIn:
        return PaperIn(
            id=f"2411.{n:05d}",
            title=f"Diffusion paper number {n}",
            upvotes=upvotes,
            categories=[category],
            source="hf" if upvotes is not None else "arxiv",
        )

    papers = [paper(1, 142, "cs.CL"), paper(2, 7, "cs.CL"), paper(3, 300, "cs.CV")]
    store(engine, [*papers, paper(4, None, "cs.CL")], now=T0 - timedelta(hours=1))
    subscribe(engine, "ada@example.org", ["trending:2 cat:cs.CL"], now=T0 - timedelta(days=1))
    send_digest(engine, settings, T0)
    text = parts(smtp.to("ada@example.org")[0])[0]
    flat = " ".join(text.split())
    assert "== top 2 trending: cs.CL (2) ==" in text
    assert flat.index("number 1") < flat.index("number 2")  # most upvoted first
    assert "number 3" not in flat and "number 4" not in flat
    assert "trending on Hugging Face, with 142 upvotes" in flat


def test_a_trending_line_with_no_upvotes_known_says_so(
    engine: Engine, settings: Settings, smtp: SmtpSink
) -> None:
    store(
        engine,
        [PaperIn(id="2411.00001", title="Diffusion without votes", source="arxiv")],
        now=T0 - timedelta(hours=1),
    )
    subscribe(engine, "ada@example.org", ["trending", "diffusion"], now=T0 - timedelta(days=1))
    send_digest(engine, settings, T0)
    text, html = parts(smtp.to("ada@example.org")[0])
    expected = "“trending”: no paper of this period with Hugging Face upvotes fits it"
    assert expected in " ".join(text.split()) and expected in html


def test_dates_read_as_people_say_them() -> None:
    assert period_label("2026-12-04") == "Friday 4 December"
    assert period_label("2026-W49") == "week of 30 November"
    assert period_label("preview") == "preview"
