"""The email tests' material: ordinary and hostile papers, settings, wire, DKIM keys, snapshots."""

from __future__ import annotations

import base64
import subprocess
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from digest.clock import utcnow
from digest.config import Settings
from digest.mail.message import Rendered, compose
from digest.mail.render import DigestView, PaperView
from tests.kit.env import TESTS

SNAPSHOTS = TESTS / "snapshots"  # the expected text of rendered emails
UNSUBSCRIBE = "https://digest.test/unsubscribe/tok-" + "x" * 80


def email_settings(**changes: object) -> Settings:
    """Settings for rendering only (no database, no SMTP)."""
    base = Settings(
        from_="Paper Digest <digest@digest.test>",
        base_url="https://digest.test",
        sender_identity="Example Lab, 1 Main Street, Cambridge CB1 1AA, UK",
    )
    return base.model_copy(update=changes)


def paper(n: int, interest: str = "mixture of experts", **changes: object) -> PaperView:
    """An ordinary paper numbered `n`."""
    fields: dict[str, object] = {
        "title": f"Sparse mixture of experts at scale, part {n}",
        "abstract": (
            "We study mixture-of-experts language models with many experts. "
            "Routing decides which experts see each token. "
            "Our method balances load without auxiliary losses. "
            "It matches dense models at a third of the compute. "
            "Code and checkpoints are released."
        ),
        "url": f"https://arxiv.org/abs/2611.{n:05d}",
        "authors": ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra"),
        "categories": ("cs.LG", "cs.CL"),
        "interest": interest,
        "terms": ("mixture of experts", "experts"),
        "upvotes": 12,
        "pdf_url": f"https://arxiv.org/pdf/2611.{n:05d}",
        "hf_url": f"https://huggingface.co/papers/2611.{n:05d}",
        "code_url": "https://github.com/example/moe",
        "published": date(2026, 11, 25),
    }
    fields.update(changes)
    return PaperView(**fields)  # type: ignore[arg-type]


HOSTILE = [
    paper(
        1,
        interest='diffusion "<img src=x onerror=alert(1)>"',
        title="<script>alert(1)</script> Diffusion & Friends",
        abstract="We show <b>bold</b> claims about diffusion. " * 30,
        url="javascript:alert(1)",
        terms=("diffusion",),
    ),
    paper(2, title="T" * 2000 + " " + "long title " * 300, terms=("long",)),
    paper(
        3,
        interest="نماذج اللغة",
        title="نماذج اللغة الكبيرة للترجمة الآلية",
        abstract="نقدم طريقة جديدة لتدريب نماذج اللغة. النتائج تتفوق على الأساليب السابقة.",
        authors=("محمد علي", "فاطمة حسن"),
        terms=("نماذج اللغة",),
    ),
    paper(
        4,
        interest="emoji 🧪 models",
        title="🚀 Rocket-fast LLMs 🤖 with $O(n \\log n)$ attention \\cite{x}",
        abstract=r"We prove $\sum_{i=1}^{n} \alpha_i \leq \frac{1}{2}$ for \textbf{all} n.",
        terms=("attention",),
    ),
    paper(5, interest="line\r\nBcc: victim@example.org", title="Injected\r\nX-Evil: 1"),
]


def digest_view(papers: list[PaperView], more: int = 0, more_url: str = "") -> DigestView:
    """A digest for reader@example.org holding `papers`."""
    return DigestView(
        email="reader@example.org",
        period="2026-11-26",
        papers=papers,
        interests=list(dict.fromkeys(p.interest for p in papers)),
        more_count=more,
        unsubscribe_url=UNSUBSCRIBE,
        preferences_url="https://digest.test/preferences/tok-p",
        more_url=more_url,
        actions=[
            (
                f"https://digest.test/feedback/tok-{n}/more",
                f"https://digest.test/feedback/tok-{n}/less",
            )
            for n, _ in enumerate(papers)
        ],
    )


def wire(rendered: Rendered, settings: Settings, unsubscribe: str | None = UNSUBSCRIBE) -> bytes:
    """The message to reader@example.org as SMTP carries it."""
    return compose(
        rendered,
        to="reader@example.org",
        settings=settings,
        message_id="<digest.1.2026-11-26@digest.test>",
        date=utcnow(),
        unsubscribe_url=unsubscribe,
    )


def parse(
    rendered: Rendered, settings: Settings, unsubscribe: str | None = UNSUBSCRIBE
) -> EmailMessage:
    """The message on the wire, parsed back by the email package (policy=default)."""
    parsed = message_from_bytes(wire(rendered, settings, unsubscribe), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) bodies of a multipart/alternative message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def make_dkim_key(folder: Path) -> tuple[Path, bytes]:
    """A fresh 2048-bit RSA key as a PEM file, and the DNS TXT record that publishes it."""
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def page_reading(html: str) -> list[tuple[object, ...]]:
    """What a page is to a reader's client: elements with their attributes and inline
    style declarations in order, text and comments, as an HTML5 parser reads them;
    whitespace-only text and the <style> elements (whose place css-inline moves) left out."""
    import html5lib

    found: list[tuple[object, ...]] = []

    def text(value: str | None) -> str:
        return value if value and value.strip() else ""

    def walk(element: Any, depth: int) -> None:
        attributes = dict(element.attrib)
        style = attributes.pop("style", "")
        declarations = [tuple(p.strip() for p in d.split(":", 1)) for d in style.split(";") if d]
        found.append((depth, element.tag, sorted(attributes.items()), declarations))
        found.append(("text", text(element.text)))
        for child in element:
            if callable(child.tag):  # a comment
                found.append(("comment", child.text))
            elif child.tag == "style":
                continue
            else:
                walk(child, depth + 1)
            found.append(("tail", text(child.tail)))

    walk(html5lib.parse(html, namespaceHTMLElements=False), 0)
    return found
