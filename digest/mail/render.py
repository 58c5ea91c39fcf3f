"""Jinja2 templates -> subject, text and HTML (CSS inlined) for digests and account emails."""

from __future__ import annotations

import re
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from types import FunctionType, MethodType
from typing import Any

import css_inline
import jinja2
from markupsafe import Markup

from digest import resource_dir
from digest.config import Settings
from digest.mail.inline import PageInliner, card_css
from digest.mail.message import (
    Block,
    Rendered,
    list_name,
)
from digest.mail.text import (
    authors_line,
    clip,
    day_label,
    excerpt,
    highlight,
    one_line,
    period_label,
    subject_for,
    wrap,
)
from digest.mail.why import explain, is_trending
from digest.match.query import readable
from digest.papers import web_url

TEMPLATE_SUFFIXES = (".html", ".txt")


class RenderError(Exception):
    """A template failed; the email must not be sent. Says which file and line."""

    def __init__(self, template: str, line: int | None, problem: str) -> None:
        where = f"{template}:{line}" if line else template
        super().__init__(f"template error in {where}: {problem}")
        self.template = template
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class PaperView:
    """A paper as a digest shows it."""

    title: str
    abstract: str
    url: str | None
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    interest: str
    terms: tuple[str, ...]
    upvotes: int | None = None
    pdf_url: str | None = None
    hf_url: str | None = None
    code_url: str | None = None
    published: date | None = None
    moved: str = ""  # how the reader's feedback moved it

    def __hash__(self) -> int:
        """The fields' hash, computed once: a view is looked up in the card caches for
        each digest it is in (its derived properties are computed once too)."""
        try:
            return self.__dict__["_hash"]  # type: ignore[no-any-return]
        except KeyError:
            value = hash(tuple(self.__dict__[name] for name in _PAPER_VIEW_FIELDS))
            object.__setattr__(self, "_hash", value)
            return value

    def __getstate__(self) -> dict[str, Any]:
        """The fields only: the kept hash and derived text are made again where it is
        unpickled (a hash differs from one process to the next)."""
        return {name: self.__dict__[name] for name in _PAPER_VIEW_FIELDS}

    @cached_property
    def link(self) -> str | None:
        """The paper's page, if it is a web link (never javascript: and the like)."""
        return web_url(self.url)

    @cached_property
    def links(self) -> list[tuple[str, str]]:
        """(label, URL) of every web link the paper has, abstract page first."""
        pairs = [
            ("Abstract", self.url),
            ("PDF", self.pdf_url),
            ("Hugging Face", self.hf_url),
            ("Code", self.code_url),
        ]
        return [(label, url) for label, raw in pairs if (url := web_url(raw))]

    @cached_property
    def why(self) -> str:
        """Why the subscriber got this paper: the interest, what matched, and where.

        The words the paper uses are quoted only where they differ from the interest's
        (a stem, an acronym's long form), so a word is never just repeated.
        """
        if self.moved.startswith("added:"):
            return f"{self.moved.removeprefix('added: ')}, which you marked “More like this”."
        why = explain(
            self.interest,
            self.terms,
            self.title,
            self.abstract,
            self.authors,
            self.categories,
            self.upvotes,
        )
        return f"{why.rstrip('.')}; {self.moved}." if self.moved else why

    @cached_property
    def meta(self) -> list[str]:
        """Categories, date and upvotes, for the line under the authors."""
        parts = []
        if self.categories:
            parts.append(", ".join(clip(c, 30) for c in self.categories[:4]))
        if self.published:
            parts.append(day_label(self.published))
        if self.upvotes is not None:
            parts.append(f"{self.upvotes} upvote{'s' * (self.upvotes != 1)}")
        return parts


_PAPER_VIEW_FIELDS = tuple(f.name for f in fields(PaperView))


@dataclass(frozen=True)
class DigestView:
    """Everything a digest template needs."""

    email: str
    period: str
    papers: list[PaperView]
    interests: list[str]
    more_count: int = 0
    unsubscribe_url: str = ""
    preferences_url: str = ""
    more_url: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    subscribed: list[str] = field(default_factory=list)
    actions: list[tuple[str, str]] = field(default_factory=list)  # per paper: more, less

    def actions_for(self, paper: PaperView) -> tuple[str, str] | None:
        """The "More like this" and "Not for me" links of one of the digest's papers."""
        return self._actions.get(id(paper))

    @cached_property
    def _actions(self) -> dict[int, tuple[str, str]]:
        return {id(shown): links for shown, links in zip(self.papers, self.actions, strict=False)}

    @property
    def when(self) -> str:
        """The period, as people say it ('Friday 4 December', 'week of 30 November')."""
        return period_label(self.period)

    @cached_property
    def quiet_trending(self) -> list[str]:
        """The subscriber's `trending` lines that brought no paper: no upvotes were known."""
        shown = {paper.interest for paper in self.papers}
        return [line for line in self.subscribed if is_trending(line) and line not in shown]

    @property
    def total(self) -> int:
        """Every paper this digest matched: shown, and held over for the next ones."""
        return len(self.papers) + self.more_count

    @property
    def all_interests(self) -> list[str]:
        """Every interest the subscriber has (for the footer), else those that matched."""
        return self.subscribed or self.interests

    @cached_property
    def groups(self) -> list[tuple[str, list[tuple[int, PaperView]]]]:
        """Papers grouped by the interest that matched, groups in order of their best paper."""
        grouped: dict[str, list[PaperView]] = {}
        for paper in self.papers:
            grouped.setdefault(paper.interest, []).append(paper)
        numbers = iter(range(1, len(self.papers) + 1))
        return [(name, [(next(numbers), p) for p in papers]) for name, papers in grouped.items()]

    @property
    def preheader(self) -> str:
        """The line inboxes show after the subject."""
        if not self.papers:
            return ""
        top = clip(self.papers[0].title, 90)
        rest = len(self.papers) - 1
        return f"Top: {top}" + (f" (and {rest} more)" if rest else "")


@dataclass(frozen=True)
class ConfirmView:
    """A double opt-in email: the link that confirms a subscription."""

    email: str
    confirm_url: str
    interests: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GoodbyeView:
    """The email that confirms an unsubscription, with a way back."""

    email: str
    resubscribe_url: str


@dataclass(frozen=True)
class ManageView:
    """Sent when an active subscriber signs up again: a link to their preferences."""

    email: str
    preferences_url: str


@dataclass(frozen=True)
class AddressView:
    """Sent to a new address a subscriber gave: the link that makes it theirs."""

    old: str
    new: str
    confirm_url: str


def _template_location(exc: BaseException) -> tuple[str, int | None]:
    """The template file and line an exception was raised from (Jinja rewrites frames)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.filename or exc.name or "?", exc.lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(TEMPLATE_SUFFIXES):
            return frame.filename, frame.lineno
    return "?", None


# Cards (and filter results) kept per process: a day's papers under the lines that matched
# them come to tens of thousands (20,000 at 20,000 subscribers); a few hundred MB at most.
CARDS = 65536


def _memo(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` with its results cached; list arguments are keyed as tuples."""
    cached = lru_cache(maxsize=CARDS)(
        lambda *args: function(*(list(a) if isinstance(a, tuple) else a for a in args))
    )

    def call(*args: Any) -> Any:
        key = args
        try:
            hash(key)
        except TypeError:  # a list argument: keyed as a tuple
            key = tuple(tuple(a) if isinstance(a, list) else a for a in args)
            try:
                hash(key)
            except TypeError:  # an unhashable argument: compute without the cache
                return function(*args)
        return cached(*key)

    return call


# Where a paper's card goes in a rendered digest page, until the card is put in.
_CARD = re.compile(r"<!--paper ([0-9a-f]{32}) ([0-9]+)-->")
_TEXT_CARD = re.compile("\ue001([0-9a-f]{32}) ([0-9]+)\ue001")
_STYLE = re.compile(r"<style\b[^>]*>([^<]*(?:<(?!/style)[^<]*)*)</style>", re.IGNORECASE)


class _NumberUsed(Exception):
    """A card template computed with its `number` instead of only printing it."""


def _refuse(self: Any, *args: Any) -> Any:
    raise _NumberUsed


class _Place(str):
    """Stands for a card's `number` while its text is rendered once for every number of
    as many digits: it prints as wide as they do (then each digest puts its own number
    in), and any other use, arithmetic, comparison or conversion, raises _NumberUsed, so
    a template that computes with `number` is rendered for each number instead."""

    __slots__ = ()
    MARK = "\ue000"  # a private-use character: no template or paper text holds it

    __add__ = __radd__ = __mul__ = __rmul__ = __mod__ = __rmod__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __int__ = __float__ = __index__ = __getitem__ = _refuse
    __hash__ = str.__hash__

    def __format__(self, spec: str) -> str:
        if spec:
            raise _NumberUsed
        return str(self)


def _assemble(
    page: str,
    marks: re.Pattern[str],
    nonce: str,
    card: Callable[[int], tuple[str, Block | None]],
) -> tuple[str, tuple[str, ...]]:
    """`page` with each card in place of its mark (the `nonce`'s only), as the whole and
    as parts (see Rendered): a card's shared lines are a part of their own where they
    stand on lines of their own (after a line break, before one, which they take)."""
    parts: list[str] = []
    plain: list[str] = []
    at = 0
    for found in marks.finditer(page):
        if found[1] != nonce:
            continue
        start, end = found.span()
        plain.append(page[at:start])
        head, tail = card(int(found[2]))
        plain.append(head)
        at = end
        if tail is None:
            continue
        # A head ends with its line break; with none, the mark must start a line.
        on_own_lines = bool(head) or start == 0 or page[start - 1] == "\n"
        if on_own_lines and page.startswith("\n", end):
            parts.append("".join(plain))
            parts.append(tail)
            plain.clear()
            at = end + 1
        else:
            plain.append(tail[:-1])
    plain.append(page[at:])
    parts.append("".join(plain))
    parts = [part for part in parts if part]
    return "".join(parts), tuple(parts)


class _Marks:
    """A page's cards: the templates' `paper_html` and `paper_text` print a mark (with
    the page's own nonce, which no paper can know) where each card is put in later."""

    __slots__ = ("cards", "nonce", "texts")

    def __init__(self) -> None:
        self.cards: list[PaperView] = []
        self.texts: list[tuple[PaperView, int]] = []
        self.nonce = uuid.uuid4().hex

    def paper_html(self, paper: PaperView) -> Markup:
        self.cards.append(paper)
        return Markup(f"<!--paper {self.nonce} {len(self.cards) - 1}-->")

    def paper_text(self, paper: PaperView, number: int) -> str:
        self.texts.append((paper, number))
        return f"\ue001{self.nonce} {len(self.texts) - 1}\ue001"


_PLAIN: set[Callable[..., Any]] = set()  # functions called from templates that take no context


class _Context(jinja2.runtime.Context):
    """Jinja's context, with calls of plain functions and methods made directly: Jinja
    looks for `pass_context` and its kind on every call (three attribute lookups, about
    1 us, 40 times a digest); a function found without them is remembered."""

    def call(__self, __obj: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        target = __obj.__func__ if type(__obj) is MethodType else __obj
        if target in _PLAIN:
            kwargs.pop("_block_vars", None)
            kwargs.pop("_loop_vars", None)
            try:
                return __obj(*args, **kwargs)
            except StopIteration:
                return __self.environment.undefined(
                    "value was undefined because a callable raised a StopIteration exception"
                )
        if (
            type(target) is FunctionType
            and not hasattr(target, "jinja_pass_arg")  # a method's is its function's
            and len(_PLAIN) < 1024
        ):
            _PLAIN.add(target)
        return super().call(__obj, *args, **kwargs)


class Renderer:
    """Renders templates from the operator's directory first, then the bundled ones.

    A digest shows each paper in a card (`email/_paper.html` and `email/_paper.txt`).
    The same paper, matched by the same interest, appears in many digests of a run, so
    its cards are rendered, and CSS-inlined, once and kept; a text card once for each
    width of its number (1-9, 10-99, ...), which is put in afterwards. Where every rule
    of the stylesheet selects elements by name, class or id alone, the cards and the page
    around them are inlined tag by tag (`inline.PageInliner`), else by css-inline; and
    the cards' lines are encoded for the wire once (Rendered's parts).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        paths = [resource_dir("templates")]
        if settings.templates_dir:
            paths.insert(0, Path(settings.templates_dir))
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(p) for p in paths]),
            autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,  # templates are read once per process
        )
        self.env.context_class = _Context
        # The same paper appears in many digests of a run: its shortened, wrapped and
        # highlighted text is computed once. The filters are pure, so caching is safe.
        self.env.filters.update(
            excerpt=_memo(excerpt),
            authors=_memo(authors_line),
            clip=_memo(clip),
            highlight=_memo(highlight),
            one_line=one_line,
            readable=_memo(readable),
            wrap=_memo(wrap),
        )
        self.inliner = css_inline.CSSInliner(
            keep_at_rules=True, load_remote_stylesheets=False, minify_css=True
        )
        self._templates: dict[str, tuple[jinja2.Template, dict[str, Any]]] = {}
        self._paper_text_at = lru_cache(maxsize=CARDS)(self._render_paper_text)
        self._paper_text_wide = lru_cache(maxsize=CARDS)(self._render_paper_text_wide)
        self._paper_html = lru_cache(maxsize=CARDS)(self._render_paper_html)
        self._paper_inlined = lru_cache(maxsize=CARDS)(self._inline_paper)

    def _paper_text(self, paper: PaperView, number: int) -> str:
        """A paper's text card at place `number` of its digest."""
        head, tail = self._paper_text_parts(paper, number)
        return head + tail[:-1] if tail else head

    def _paper_text_parts(self, paper: PaperView, number: int) -> tuple[str, Block | None]:
        """A paper's text card at place `number`, as the lines through its number and the
        lines after them (ending with a line break, the same in every digest), if any."""
        digits = len(str(number))
        card = self._paper_text_wide(paper, digits)
        if card is None:  # the template computes with its number
            return self._paper_text_at(paper, number), None
        head, tail = card
        return head.replace(_Place.MARK * digits, str(number)), tail

    def _render_paper_text_wide(
        self, paper: PaperView, digits: int
    ) -> tuple[str, Block | None] | None:
        """The text card for any number of `digits` digits, with _Place.MARK in its place,
        cut after the line of its last number (see _paper_text_parts); None when the
        template uses `number` other than by printing it."""
        place = _Place(_Place.MARK * digits)
        try:
            text = self._run("email/_paper.txt", {"paper": paper, "number": place})
        except Exception:  # _NumberUsed; any other error is reported, located, by the
            return None  # ordinary rendering the caller falls back to
        text = text.removesuffix("\n")
        last = text.rfind(_Place.MARK)
        if last < 0:  # no number printed: the whole card is the same in every digest
            return "", Block(text + "\n")
        end = text.find("\n", last)
        if end < 0:  # the number is on the last line
            return text, None
        return text[: end + 1], Block(text[end + 1 :] + "\n")

    def _render_paper_text(self, paper: PaperView, number: int) -> str:
        text = self._render("email/_paper.txt", {"paper": paper, "number": number})
        return text.removesuffix("\n")

    def _render_paper_html(self, paper: PaperView) -> str:
        return self._render("email/_paper.html", {"paper": paper}).removesuffix("\n")

    def _inline_paper(self, paper: PaperView, css: str) -> Block:
        """The card inlined, with a line break after it (see _assemble): tag by tag where
        the card's rules allow (a quarter of css-inline's time), else by css-inline."""
        card = self._paper_html(paper)
        inliner = PageInliner.of(css)
        styled = inliner.inline(card) if inliner is not None else None
        if styled is None:
            styled = self._inline(card, "email/_paper.html", css)
        return Block(styled + "\n")

    def _inline(self, html: str, template: str, css: str | None = None) -> str:
        try:
            if css is None:
                return str(self.inliner.inline(html))
            return str(self.inliner.inline_fragment(html, css))
        except (css_inline.InlineError, ValueError) as exc:
            raise RenderError(template, None, f"CSS inlining: {exc}") from exc

    def _run(self, name: str, context: dict[str, Any]) -> str:
        """`Template.render`, less its per-call copying: the template and its globals are
        looked up once, and the context handed to it as it is (the page's own dict)."""
        found = self._templates.get(name)
        if found is None:
            template = self.env.get_template(name)
            found = self._templates[name] = (template, dict(template.globals))
        template, names = found
        run = template.new_context({**names, **context}, shared=True)
        try:
            return self.env.concat(template.root_render_func(run))
        except Exception:
            self.env.handle_exception()

    def _render(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self._run(name, context)
        except jinja2.TemplateNotFound as exc:
            raise RenderError(name, None, f"template not found: {exc.name}") from exc
        except RenderError:  # from a paper's card, already located
            raise
        except Exception as exc:
            template, line = _template_location(exc)
            raise RenderError(template, line, f"{type(exc).__name__}: {exc}") from exc

    def _page(self, kind: str, subject: str, **context: Any) -> Rendered:
        marks = _Marks()
        cards, texts, nonce = marks.cards, marks.texts, marks.nonce
        context.update(
            subject=subject,
            settings=self.settings,
            list_name=list_name(self.settings),
            paper_html=marks.paper_html,
            paper_text=marks.paper_text,
        )
        text_page = self._render(f"email/{kind}.txt", context)
        text, text_parts = _assemble(
            text_page, _TEXT_CARD, nonce, lambda i: self._paper_text_parts(*texts[i])
        )
        html = self._render(f"email/{kind}.html", context)
        sheet = "".join(_STYLE.findall(html))
        css = card_css(sheet) if cards else None
        if css is None:  # the whole page inlined at once, cards in place

            def put(found: re.Match[str]) -> str:
                return self._paper_html(cards[int(found[2])]) if found[1] == nonce else found[0]

            html = self._inline(_CARD.sub(put, html), f"email/{kind}.html")
            return Rendered(one_line(subject), text, html, text_parts=text_parts)
        inliner = PageInliner.of(sheet)  # each tag on its own, where the rules allow
        page = inliner.inline(html) if inliner is not None else None
        if page is None:
            page = self._inline(html, f"email/{kind}.html")
        html, html_parts = _assemble(
            page, _CARD, nonce, lambda i: ("", self._paper_inlined(cards[i], css))
        )
        return Rendered(one_line(subject), text, html, text_parts=text_parts, html_parts=html_parts)

    def _digest_once(self, view: DigestView) -> Rendered:
        subject = subject_for(len(view.papers), [name for name, _ in view.groups])
        rendered = self._page("digest", subject, digest=view)
        return replace(rendered, shown=len(view.papers))

    def digest(self, view: DigestView) -> Rendered:
        """Render a digest; papers past the HTML size limit move to 'and N more'."""
        rendered = self._digest_once(view)
        budget = self.settings.email_max_bytes
        while len(rendered.html.encode()) > budget and len(view.papers) > 1:
            size, count = len(rendered.html.encode()), len(view.papers)
            keep = min(count - 1, max(1, count * budget // size))
            more = view.more_count + count - keep
            view = replace(view, papers=view.papers[:keep], more_count=more)
            rendered = self._digest_once(view)
        return rendered

    def nothing(self, view: DigestView) -> Rendered:
        """Render the short note sent, to those who asked, when nothing matched."""
        subject = f"Nothing new matched your interests ({view.period})"
        return replace(self._page("nothing", subject, digest=view), shown=0)

    def confirm(self, view: ConfirmView) -> Rendered:
        """Render the email that asks a new subscriber to confirm."""
        subject = f"Confirm your subscription to {list_name(self.settings)}"
        return self._page("confirm", subject, confirm=view)

    def goodbye(self, view: GoodbyeView) -> Rendered:
        """Render the email that confirms an unsubscription."""
        subject = f"You are unsubscribed from {list_name(self.settings)}"
        return self._page("goodbye", subject, goodbye=view)

    def address(self, view: AddressView) -> Rendered:
        """Render the email that asks the owner of a new address to confirm it."""
        subject = f"Confirm your new address for {list_name(self.settings)}"
        return self._page("address", subject, address=view)

    def manage(self, view: ManageView) -> Rendered:
        """Render the email that sends an existing subscriber a link to their preferences."""
        subject = f"Your {list_name(self.settings)} subscription"
        return self._page("manage", subject, manage=view)
