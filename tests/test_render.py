"""Rendering: a multipart/alternative message with safe content and headers."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.config import Settings
from digest.mailer import flatten
from digest.models import utcnow
from digest.render import (
    DigestView,
    PaperView,
    Renderer,
    build_message,
    shorten,
    subject_for,
)


@pytest.fixture
def settings() -> Settings:
    """Settings for rendering only (no database, no SMTP)."""
    return Settings(from_="Paper Digest <digest@digest.test>", base_url="https://digest.test")


HOSTILE = PaperView(
    title="<script>alert(1)</script> Diffusion & Friends",
    abstract="We show <b>bold</b> claims. " * 40,
    url="https://arxiv.org/abs/2401.00001",
    authors=["A. One", "B. Two", "C. Three", "D. Four"],
    categories=["cs.LG"],
    interest='diffusion "<img src=x>"',
    terms=("diffusion",),
)


def view(papers: list[PaperView], more: int = 0) -> DigestView:
    return DigestView(
        email="reader@example.org",
        period="2026-11-26",
        papers=papers,
        interests=list(dict.fromkeys(p.interest for p in papers)),
        more_count=more,
        unsubscribe_url="https://digest.test/unsubscribe/" + "x" * 90,
    )


def message_for(settings: Settings, digest: DigestView) -> EmailMessage:
    rendered = Renderer(settings).digest(digest)
    built = build_message(
        rendered,
        to=digest.email,
        settings=settings,
        message_id="<digest.1.p@digest.test>",
        date=utcnow(),
        unsubscribe_url=digest.unsubscribe_url,
    )
    parsed = message_from_bytes(flatten(built), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_message_structure_and_headers(settings: Settings) -> None:
    message = message_for(settings, view([HOSTILE], more=3))
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["From"] == "Paper Digest <digest@digest.test>"
    assert message["To"] == "reader@example.org"
    assert message["Message-ID"] == "<digest.1.p@digest.test>"
    assert message["Date"]
    assert message["Subject"] == '1 new paper on diffusion "<img src=x>"'
    assert message["List-Unsubscribe"].startswith(
        "<https://digest.test/unsubscribe/" + "x" * 90 + ">, <mailto:digest@digest.test?"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_paper_and_interest_text_is_escaped_in_html(settings: Settings) -> None:
    message = message_for(settings, view([HOSTILE], more=3))
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    html = html_part.get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x>" not in html
    assert "<b>bold</b>" not in html
    assert 'href="https://digest.test/unsubscribe/' in html
    text = text_part.get_content()
    assert "<script>alert(1)</script> Diffusion & Friends" in text
    assert "A. One, B. Two, C. Three et al." in text
    assert "And 3 more matched" in text
    assert "Unsubscribe: https://digest.test/unsubscribe/" in text
    assert max(len(line) for line in text.splitlines() if "://" not in line) <= 78


def test_header_injection_is_refused(settings: Settings) -> None:
    digest = view([HOSTILE])
    rendered = Renderer(settings).digest(digest)
    with pytest.raises(ValueError):
        build_message(
            rendered,
            to="a@example.org\r\nBcc: victim@example.org",
            settings=settings,
            message_id="<x@y>",
            date=utcnow(),
            unsubscribe_url=digest.unsubscribe_url,
        )


def test_operator_templates_override_the_bundled_ones(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt").write_text("Custom: {{ digest.papers | length }}\n")
    custom = settings.model_copy(update={"templates_dir": tmp_path})
    rendered = Renderer(custom).digest(view([HOSTILE]))
    assert rendered.text == "Custom: 1\n"
    assert "<!DOCTYPE html>" in rendered.html  # not overridden: the bundled one


def test_subject_and_shortening() -> None:
    assert subject_for(7, ["moe", "llm quantization", "rag", "ssm"]) == (
        "7 new papers on moe, llm quantization and 2 more interests"
    )
    assert subject_for(1, ["a", "b", "c"]) == "1 new paper on a, b and 1 more interest"
    text = "First sentence here. Second one is longer than that. Third."
    assert shorten(text, 40) == "First sentence here."
    assert shorten("word " * 100, 50).endswith("…")
