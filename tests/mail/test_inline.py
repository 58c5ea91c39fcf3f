"""The page inliner styles each start tag as css-inline styles the whole page."""

from __future__ import annotations

import css_inline
import pytest

from digest import resource_dir
from digest.mail.inline import PageInliner
from digest.mail.render import _STYLE, Renderer
from tests.kit.mail import HOSTILE, digest_view, email_settings, page_reading, paper

CSS_INLINE = css_inline.CSSInliner(
    keep_at_rules=True, load_remote_stylesheets=False, minify_css=True
)

SHEET = (
    "p{color:red;padding-left:3px}.a{padding:1px 2px}#i{color:blue !important}"
    ".b{color : green ;  font-family: 'A B', \"C\"}p.a.b{margin:0}td.c{width:1%}"
    "@media (max-width:600px){.a{padding:0 !important}}"
)
BODY = """
<p class="a">plain</p>
<p class="a b" id="i" style="color:black">every kind of rule, and its own style</p>
<p class="b" style="color:black;margin:1px">its own style after the sheet's</p>
<P CLASS="a">upper case</P><p class="A">classes are case-sensitive</p>
<p class="a" class="b">the first class attribute counts</p>
<div class=" a  b " data-x='1 > 0'>spaces, and a quoted &gt;</div>
<table><tr><td class="c">cell</td></tr></table>
<p class="a"/>
<!--[if mso]><p class="a">in a comment</p><![endif]-->
<img class="b" src="x.png" alt="&quot;quoted&quot; &amp; more"><br>
<textarea class="a"><p class="a">text, not markup</p></textarea>
"""


def _page(sheet: str, body: str) -> str:
    head = f"<title>t</title><style>{sheet}</style>"
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


def test_a_page_reads_as_css_inline_makes_it() -> None:
    page = _page(SHEET, BODY.replace("data-x='1 > 0'", "data-x='1 &gt; 0'"))
    inliner = PageInliner.of(SHEET)
    assert inliner is not None
    ours = inliner.inline(page)
    assert ours is not None and "@media (max-width:600px)" in ours
    assert page_reading(ours) == page_reading(CSS_INLINE.inline(page))
    assert inliner.inline(page) == ours  # the second time from the kept tags


def test_real_digests_read_as_css_inline_makes_them() -> None:
    renderer = Renderer(email_settings())
    pages: list[str] = []
    inline = renderer._inline

    def keep(html: str, template: str, css: str | None = None) -> str:
        pages.append(html)
        return inline(html, template, css)

    renderer._inline = keep  # type: ignore[method-assign]
    papers = [*HOSTILE, paper(1), paper(2, interest="quantization")]
    PageInliner.of.cache_clear()
    for view in (digest_view(papers, more=2), digest_view(papers[-1:])):
        html = renderer.env.get_template("email/digest.html").render(
            digest=view,
            subject="s",
            settings=renderer.settings,
            list_name="l",
            paper_html=renderer._paper_html,
        )
        inliner = PageInliner.of("".join(_STYLE.findall(html)))
        assert inliner is not None, "the bundled stylesheet is inlined tag by tag"
        ours = inliner.inline(html)
        assert ours is not None
        assert page_reading(ours) == page_reading(CSS_INLINE.inline(html))


def test_an_attribute_holding_a_quoted_angle_bracket_is_left_to_css_inline() -> None:
    inliner = PageInliner.of(SHEET)
    assert inliner is not None
    assert inliner.inline(_page(SHEET, BODY)) is None  # data-x='1 > 0'


@pytest.mark.parametrize(
    "sheet",
    [
        ".a .b{color:red}",
        ".a>p{color:red}",
        "p:first-child{color:red}",
        "p[title]{color:red}",
        "*{margin:0}",
        "@font-face{font-family:x}",
        "p{color:red",
        "p{content:'unclosed}",
    ],
)
def test_a_sheet_whose_effect_depends_on_place_is_refused(sheet: str) -> None:
    assert PageInliner.of(sheet) is None


def test_the_bundled_layout_is_inlined_tag_by_tag() -> None:
    layout = (resource_dir("templates") / "email" / "_layout.html").read_text()
    assert PageInliner.of("".join(_STYLE.findall(layout))) is not None
