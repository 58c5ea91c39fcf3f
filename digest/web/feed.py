"""A subscriber's private Atom feed (RFC 4287) of the papers their digests sent them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from digest.papers import paper_url, web_url

ATOM = "http://www.w3.org/2005/Atom"


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    element.text = text
    return element


def _stamp(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def atom(
    self_url: str,
    subscriber: Any,
    papers: Sequence[Any],
    now: datetime,
    actions: Mapping[int, str] | None = None,
) -> bytes:
    """The feed document: one entry per paper received, newest first; `actions` holds each
    paper's feedback link (without its /more or /less)."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "title", "Your paper digest")
    _text(feed, "subtitle", f"Papers sent to {subscriber.email}")
    _text(feed, "id", f"tag:digest,2026:feed:{subscriber.id}")
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=self_url)
    updated = max((p.sent_at for p in papers), default=now)
    _text(feed, "updated", _stamp(updated))
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "digest")
    for paper in papers:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "title", paper.title)
        _text(entry, "id", f"tag:digest,2026:paper:{paper.canonical_id}")
        _text(entry, "updated", _stamp(paper.sent_at))
        if paper.published_at:
            _text(entry, "published", _stamp(paper.published_at))
        link = web_url(paper_url(paper))
        if link:
            ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=link)
        for name in paper.authors[:20]:
            person = ET.SubElement(entry, f"{{{ATOM}}}author")
            _text(person, "name", str(name))
        for category in paper.categories:
            ET.SubElement(entry, f"{{{ATOM}}}category", term=str(category))
        _text(entry, "summary", paper.abstract or paper.title)
        action = (actions or {}).get(paper.id)
        if action:
            for kind, title in (("more", "More like this"), ("less", "Not for me")):
                ET.SubElement(
                    entry, f"{{{ATOM}}}link", rel="related", title=title, href=f"{action}/{kind}"
                )
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body
