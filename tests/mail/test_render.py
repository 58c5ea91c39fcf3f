"""Rendering: content of the digest, escaping of hostile input, templates and their errors."""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import html5lib
import jinja2
import pytest

from digest import resource_dir
from digest.mail.inline import card_css
from digest.mail.message import Block, Rendered, compose, list_name
from digest.mail.render import (
    _PLAIN,
    ConfirmView,
    DigestView,
    GoodbyeView,
    Renderer,
    RenderError,
    _Context,
)
from digest.mail.text import highlight, shorten, subject_for, wrap
from tests.kit.mail import (
    HOSTILE,
    SNAPSHOTS,
    digest_view,
    email_settings,
    page_reading,
    paper,
)


def assert_valid_html5(html: str) -> None:
    """Parse with a strict HTML5 parser: any parse error fails."""
    html5lib.HTMLParser(strict=True).parse(html)


def test_digest_groups_papers_by_interest_best_first() -> None:
    papers = [paper(1), paper(2, interest="quantization", terms=("quantization",)), paper(3)]
    rendered = Renderer(email_settings()).digest(digest_view(papers))
    assert rendered.subject == "3 new papers: mixture of experts and quantization"
    text = rendered.text
    moe, quant = text.index("== mixture of experts (2) =="), text.index("== quantization (1) ==")
    assert moe < text.index("1.  Sparse") < text.index("2.  Sparse") < quant < text.index("3.  ")
    assert text.index("part 3") < quant  # paper 3 joins its interest's group
    html = rendered.html
    assert html.index("part 1") < html.index("part 3") < html.index("part 2")


def test_each_paper_shows_its_details_links_and_why() -> None:
    rendered = Renderer(email_settings()).digest(digest_view([paper(7)]))
    html, text = rendered.html, rendered.text
    for needle in (
        'href="https://arxiv.org/abs/2611.00007"',
        'href="https://arxiv.org/pdf/2611.00007"',
        'href="https://huggingface.co/papers/2611.00007"',
        'href="https://github.com/example/moe"',
        "Ada Lovelace, Grace Hopper, Alan Turing et al.",
        "cs.LG, cs.CL · 25 November 2026 · 12 upvotes",
        "your interest “mixture of experts”: in the title and the abstract.",
    ):
        assert needle in html
    assert '<mark class="hl"' in html and ">mixture-of-experts</mark>" in html
    assert "PDF:          https://arxiv.org/pdf/2611.00007" in text
    assert "Code:         https://github.com/example/moe" in text
    assert "<mark" not in text
    assert "Top: Sparse mixture of experts at scale, part 7" in html  # preheader


def test_footer_has_preferences_unsubscribe_reason_and_identity() -> None:
    view = digest_view([paper(1)], more=4, more_url="https://digest.test/digests/t/9")
    rendered = Renderer(email_settings()).digest(view)
    html, text = rendered.html, rendered.text
    assert 'href="https://digest.test/preferences/tok-p"' in html
    assert f'href="{view.unsubscribe_url}"' in html
    assert "subscribed to Paper Digest with this interest" in " ".join(html.split())
    assert "Example Lab, 1 Main Street, Cambridge CB1 1AA, UK" in html
    assert "And 4 more matched" in html and 'href="https://digest.test/digests/t/9"' in html
    assert "See all 5: https://digest.test/digests/t/9" in text
    assert f"Unsubscribe: {view.unsubscribe_url}" in text
    assert "Preferences: https://digest.test/preferences/tok-p" in text
    assert "Example Lab, 1 Main Street" in text


def test_html_is_self_contained_inlined_and_dark_mode_ready() -> None:
    html = Renderer(email_settings()).digest(digest_view([paper(1), paper(2)])).html
    assert_valid_html5(html)
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "<script" not in html and "<link" not in html
    assert re.search(r'<h2 dir="auto" style="[^"]*font-size:17px', html)  # inlined
    style = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(style) == 1 and "@media (max-width:620px)" in style[0]
    assert "prefers-color-scheme:dark" in style[0] and ".ab{margin" not in style[0]


def test_hostile_paper_and_interest_text_is_shown_as_text() -> None:
    rendered = Renderer(email_settings()).digest(digest_view(HOSTILE))
    html, text = rendered.html, rendered.text
    assert_valid_html5(html)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>" not in html and "javascript:" not in html
    assert "X-Evil" in html and "\r" not in html
    assert "Diffusion &amp; Friends" in html
    titles = re.findall(r'<h2 dir="auto"[^>]*>(.*?)</h2>', html, re.S)
    assert any("الكبيرة للترجمة الآلية" in t for t in titles)  # direction from the text
    assert "🚀 Rocket-fast LLMs 🤖 with $O(n \\log n)$" in html
    assert r"\frac{1}{2}" in text
    assert "T" * 2001 not in html and "T" * 2001 not in text  # 5,000-character title clipped
    assert "<script>alert(1)</script> Diffusion & Friends" in text
    long_lines = [line for line in text.splitlines() if len(line) > 76 and "://" not in line]
    assert long_lines == []


def test_text_part_matches_snapshot() -> None:
    view = digest_view(
        [paper(1), paper(2, interest="quantization", terms=("quantization",)), paper(3)],
        more=5,
        more_url="https://digest.test/digests/tok-d/42",
    )
    text = Renderer(email_settings()).digest(view).text
    snapshot = SNAPSHOTS / "digest.txt"
    if os.environ.get("DIGEST_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(text, encoding="utf-8")
    assert text == snapshot.read_text(encoding="utf-8")


def test_confirm_and_goodbye_emails() -> None:
    renderer = Renderer(email_settings())
    confirm = renderer.confirm(
        ConfirmView("new@example.org", "https://digest.test/confirm/tok-c", ["<b>rag</b>"])
    )
    assert confirm.subject == "Confirm your subscription to Paper Digest"
    assert 'href="https://digest.test/confirm/tok-c"' in confirm.html
    assert "&lt;b&gt;rag&lt;/b&gt;" in confirm.html
    assert "https://digest.test/confirm/tok-c" in confirm.text
    assert_valid_html5(confirm.html)
    goodbye = renderer.goodbye(GoodbyeView("old@example.org", "https://digest.test/"))
    assert goodbye.subject == "You are unsubscribed from Paper Digest"
    assert "old@example.org will not receive any more digests" in goodbye.text
    assert 'href="https://digest.test/"' in goodbye.html
    assert_valid_html5(goodbye.html)


def test_operator_templates_override_the_bundled_ones(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt").write_text("Custom: {{ digest.papers | length }}\n")
    rendered = Renderer(email_settings(templates_dir=tmp_path)).digest(digest_view([paper(1)]))
    assert rendered.text == "Custom: 1\n"
    assert "<!DOCTYPE html>" in rendered.html  # not overridden: the bundled one


def _layout_with(folder: Path, rule: str) -> Renderer:
    """A renderer whose layout adds one CSS rule to the bundled one."""
    layout = (resource_dir("templates") / "email" / "_layout.html").read_text()
    (folder / "email").mkdir()
    (folder / "email" / "_layout.html").write_text(layout.replace("</style>", rule + "\n</style>"))
    return Renderer(email_settings(templates_dir=folder))


def test_paper_cards_inlined_apart_read_as_the_whole_page_inlined(tmp_path: Path) -> None:
    view = digest_view([*HOSTILE, paper(1), paper(2, interest="quantization")], more=2)
    fast = Renderer(email_settings())
    # A rule that depends on an element's place makes the renderer inline the whole page.
    whole = _layout_with(tmp_path, ".nowhere p{color:red}")
    first = fast.digest(view).html
    assert first == fast.digest(view).html  # the second time from the card cache
    assert "<!--paper" not in first
    assert page_reading(first) == page_reading(whole.digest(view).html)


def test_rules_that_depend_on_the_place_of_an_element_apply_inside_cards(tmp_path: Path) -> None:
    renderer = _layout_with(tmp_path, ".paper h2{letter-spacing:2px}")
    html = renderer.digest(digest_view([paper(1)])).html
    assert re.search(r'<h2 dir="auto" style="[^"]*letter-spacing:2px', html)
    assert card_css(".a{color:red}h2,.b.c,#d,*{margin:0}@media (x){.a p{color:blue}}") == (
        ".a{color:red}h2,.b.c,#d,*{margin:0}"
    )
    for unsafe in (".a .b{x:y}", ".a>p{x:y}", "p:first-child{x:y}", "a+b{x:y}", "p[x]{x:y}"):
        assert card_css(unsafe) is None, unsafe


def test_text_cards_are_the_same_as_rendered_for_their_own_number(tmp_path: Path) -> None:
    renderer = Renderer(email_settings())
    card = paper(1)
    for number in (1, 9, 10, 12, 99, 100):
        assert renderer._paper_text(card, number) == renderer._render_paper_text(card, number)
    assert renderer._paper_text_wide.cache_info().currsize == 3  # one per width
    # A card template that computes with its number is rendered for each number.
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "_paper.txt").write_text(
        "{% if number == 1 %}Top: {% endif %}{{ number * 10 }} {{ '%03d' | format(number) }}"
        " {{ number | int + 1 }}\n"
    )
    custom = Renderer(email_settings(templates_dir=tmp_path))
    assert custom._paper_text(card, 1) == "Top: 10 001 2"
    assert custom._paper_text(card, 12) == "120 012 13"
    text = custom.digest(digest_view([paper(1), paper(2)])).text
    assert "Top: 10 001 2" in text and "\n20 002 3" in text


def _composed(rendered: Rendered) -> bytes:
    when = datetime(2026, 12, 3, 8, tzinfo=UTC)
    message = compose(
        rendered, to="ada@example.org", settings=email_settings(), message_id="<m@x>", date=when
    )
    return re.sub(rb"=_[0-9a-f]{32}", b"=_boundary", message)


def _text_rendered_whole(renderer: Renderer, view: DigestView, subject: str) -> str:
    """The text part as rendered with each card in place, for its own number."""
    return renderer.env.get_template("email/digest.txt").render(
        digest=view,
        subject=subject,
        settings=renderer.settings,
        list_name=list_name(renderer.settings),
        paper_text=renderer._render_paper_text,
    )


@pytest.mark.parametrize(
    ("paper_txt", "paper_html", "digest_txt"),
    [
        (None, None, None),  # the bundled templates
        ("{{ number }}. {{ paper.title }}\r\nlast line {{ number }}", None, None),
        ("no number at all\n{{ paper.title }}  \n", "<p>{{ paper.title }}</p> ", None),
        (None, None, "{% for p in digest.papers %}[{{ paper_text(p, loop.index) }}]{% endfor %}"),
        (None, None, "{% for p in digest.papers %}{{ paper_text(p, 1) }}\n{% endfor %}end"),
    ],
)
def test_a_message_built_from_shared_card_parts_is_the_one_built_whole(
    tmp_path: Path, paper_txt: str | None, paper_html: str | None, digest_txt: str | None
) -> None:
    (tmp_path / "email").mkdir()
    for name, source in (
        ("_paper.txt", paper_txt),
        ("_paper.html", paper_html),
        ("digest.txt", digest_txt),
    ):
        if source is not None:
            (tmp_path / "email" / name).write_text(source)
    renderer = Renderer(email_settings(templates_dir=tmp_path))
    papers = [
        paper(n, interest="quantization" if n % 3 else "mixture of experts") for n in range(12)
    ]
    for view in (digest_view([*HOSTILE, *papers], more=3), digest_view(papers[:1])):
        for _ in range(2):  # the second time, the cards' encodings are kept ones
            rendered = renderer.digest(view)
            assert rendered.text == _text_rendered_whole(renderer, view, rendered.subject)
            assert "".join(rendered.text_parts) == rendered.text
            assert "".join(rendered.html_parts) == rendered.html
            assert all(part.endswith("\n") for part in rendered.html_parts[:-1])
            whole = replace(rendered, text_parts=(), html_parts=())
            assert _composed(rendered) == _composed(whole)
    if paper_txt is None and digest_txt is None:  # the bundled cards stand on their own lines
        assert sum(type(part) is Block for part in rendered.text_parts) == 1
        assert sum(type(part) is Block for part in rendered.html_parts) == 1


@pytest.mark.parametrize(
    ("name", "source", "line", "problem"),
    [
        (
            "digest.txt",
            "line one\n{% for p in digest.papers %}\n{{ p.title }\n",
            3,
            "TemplateSyntaxError",
        ),
        ("digest.txt", "ok\nok\n{{ digest.no_such_field }}\n", 3, "no_such_field"),
        ("digest.txt", "{{ 1 // 0 }}\n", 1, "ZeroDivisionError"),
        ("_paper.txt", "{{ number }}\n{{ paper.no_such_field }}\n", 2, "no_such_field"),
        ("_paper.html", "<p>\n</p>{{ paper.title | no_such_filter }}\n", 2, "no_such_filter"),
    ],
)
def test_template_errors_name_file_and_line(
    tmp_path: Path, name: str, source: str, line: int, problem: str
) -> None:
    (tmp_path / "email").mkdir()
    path = tmp_path / "email" / name
    path.write_text(source)
    with pytest.raises(RenderError) as caught:
        Renderer(email_settings(templates_dir=tmp_path)).digest(digest_view([paper(1)]))
    assert caught.value.line == line
    assert caught.value.template.endswith(f"email/{name}")
    assert f"{name}:{line}" in str(caught.value) and problem in str(caught.value)


def test_text_helpers() -> None:
    assert subject_for(7, ["moe", "llm quantization", "rag", "ssm"]) == (
        "7 new papers: moe, llm quantization and 2 more"
    )
    assert subject_for(1, ["a", "b", "c"]) == "1 new paper: a, b and 1 more"
    assert subject_for(2, ["x\r\nBcc: y@z"]) == "2 new papers: x Bcc: y@z"
    text = "First sentence here. Second one is longer than that. Third."
    assert shorten(text, 40) == "First sentence here."
    assert shorten("word " * 100, 50).endswith("…")
    assert str(highlight("In-context <learning>", ["in context"])) == (
        '<mark class="hl">In-context</mark> &lt;learning&gt;'
    )
    assert str(highlight("contextual", ["context"])) == "contextual"
    assert (
        wrap("x" * 100 + " https://example.org/" + "y" * 90, 40)
        .splitlines()[-1]
        .startswith("https://")
    )


def test_a_paper_view_keeps_its_hash_and_text_but_pickles_only_its_fields() -> None:
    """Its hash and derived text are computed once; a hash differs from one process to
    the next, so neither travels with a pickled view."""
    view = paper(1, title="Quantized diffusion")
    first = (hash(view), view.why, view.links)
    assert (hash(view), view.why, view.links) == first
    assert view.why is first[1]  # kept, not made again
    again = pickle.loads(pickle.dumps(view))
    assert again == view and hash(again) == hash(view)
    assert set(pickle.loads(pickle.dumps(view)).__dict__) == {f.name for f in fields(view)}
    assert again.why == view.why and replace(view, moved="x") != view


def test_template_calls_keep_jinjas_meaning() -> None:
    """Plain functions and methods are called directly, from the second call on; those
    that ask for the context still get it, inside loops too; StopIteration is undefined."""
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    env.context_class = _Context

    @jinja2.pass_context
    def where(context: Any, suffix: str) -> str:
        return f"{context['name']}{suffix}"

    def stops() -> str:
        raise StopIteration

    template = env.from_string(
        "{% for n in [1, 2] %}{% set name = 'loop' %}{{ twice(n) }} {{ where('!') }} "
        "{{ view.why[:3] }} {{ stops() }}|{% endfor %}"
    )

    def twice(n: int) -> int:
        return n * 2

    shown = template.render(twice=twice, where=where, view=paper(1), stops=stops)
    assert shown == "2 loop! you |4 loop! you |"
    assert twice in _PLAIN and where not in _PLAIN  # direct from the second call
