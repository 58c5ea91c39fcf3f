"""CSS inlining of a page whose rules select elements by name, class or id alone.

Then an element's inlined style depends on its own start tag only (its name, classes, id
and style attribute), never on where it stands, so each start tag is styled on its own
and the result kept for the next page that holds the same tag. The page's markup is left
as it was written, apart from the style attributes and the <style> elements, which keep
only their @-rules (media queries). The cascade is css-inline's: declarations in order of
specificity, then source order, an overriding declaration moving to the end; the
element's own style attribute after the stylesheet's declarations; `!important` ones
last, and an element's own `!important` after them.

`PageInliner.of(css)` is None for anything else (combinators, pseudo-classes, attribute
selectors, `*`, at-rules other than the kept ones, quotes that do not close), and the
caller inlines with css-inline.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache

# One CSS rule outside @-rules, and an @-rule with its block (two levels of braces).
_AT_RULE = re.compile(r"@[^{};]*(?:;|\{(?:[^{}]*\{[^{}]*\})*[^{}]*\})")
_RULE = re.compile(r"\s*([^{}@]+)\{([^{}]*)\}\s*")
# A selector that matches an element by its own name, class or id, whatever its place.
_OWN_SELECTOR = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9-]*|\*)?(?:[.#][A-Za-z0-9_-]+)*\s*")
_SELECTOR = re.compile(r"([A-Za-z][A-Za-z0-9-]*)?((?:[.#][A-Za-z0-9_-]+)*)")
_NAME = re.compile(r"([.#])([A-Za-z0-9_-]+)")
# A declaration: a property and a value (quoted strings may hold ; and :).
_DECLARATION = re.compile(r"""\s*([^:;\s]+)\s*:((?:[^;"']|"[^"]*"|'[^']*')*)(?:;|$)""")
_IMPORTANT = re.compile(r"\s*!\s*important\s*$", re.IGNORECASE)

# What the page is read as: start tags (other than of elements whose text is not
# markup), comments and doctypes, and those elements of text, whole.
_RAW = "|".join(
    "".join(f"[{c.upper()}{c}]" for c in name) for name in ("style", "script", "title", "textarea")
)  # written out: the IGNORECASE flag makes the whole expression several times slower
_MARKUP = re.compile(
    rf"<({_RAW})(\b[^>]*)>(.*?</\1\s*>)"
    r"|<([A-Za-z][A-Za-z0-9-]*)([^>]*)>"
    r"|<!--.*?-->|<![^>]*>",
    re.DOTALL,
)
_HREF = re.compile(r'\shref="([^"]*)"', re.IGNORECASE)
HOLE = "\x00"  # where a link's address goes back in

_ATTRIBUTE = re.compile(
    r"""\s+([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""", re.DOTALL
)


@lru_cache(maxsize=16)
def card_css(css: str) -> str | None:
    """The rules of `css` to inline into a paper card on its own, or None if that is unsafe.

    A card can be inlined apart from its page when every rule outside @-rules selects
    elements by name, class or id alone: no combinators or pseudo-classes, which depend
    on where the element is. The @-rules (media queries) stay in the page's <style>.
    """
    rules = _AT_RULE.sub("", css)
    found = list(_RULE.finditer(rules))
    if "".join(m.group(0) for m in found).strip() != rules.strip():
        return None
    for rule in found:
        if not all(_OWN_SELECTOR.fullmatch(part) for part in rule.group(1).split(",")):
            return None
    return "".join(m.group(0).strip() for m in found)


class _Unreadable(ValueError):
    """A start tag whose attributes, or whose own style, do not read as such (an
    attribute value holding ">", say): css-inline is left to read the page."""


@dataclass(frozen=True)
class _Rule:
    tag: str | None
    classes: frozenset[str]
    id: str | None
    specificity: tuple[int, int, int, int]  # ids, classes, names, place in the sheet
    declarations: tuple[tuple[str, str, bool], ...]  # property, value, important


def _declarations(text: str) -> tuple[tuple[str, str, bool], ...] | None:
    found: list[tuple[str, str, bool]] = []
    at = 0
    text = text.strip()
    while at < len(text):
        match = _DECLARATION.match(text, at)
        if match is None or match.end() == at:
            return None
        value = match[2].strip()
        important = bool(_IMPORTANT.search(value))
        value = _IMPORTANT.sub("", value).strip() if important else value
        if value:
            found.append((match[1].lower(), value.replace('"', "'"), important))
        at = match.end()
    return tuple(found)


class PageInliner:
    """Inlines one stylesheet (see the module); make it with `of`."""

    def __init__(self, rules: list[_Rule], kept: str) -> None:
        self.rules = rules
        self.kept = kept  # the @-rules, left in <style>
        self._tags: dict[str, str] = {}
        self._styles: dict[tuple[str, str, str | None, str | None], str] = {}

    @staticmethod
    @lru_cache(maxsize=16)
    def of(css: str) -> PageInliner | None:
        """The inliner of `css`, or None if some rule's effect depends on an element's place."""
        kept = " ".join(m.group(0).strip() for m in _AT_RULE.finditer(css))
        if any(not m.group(0).lstrip().startswith("@media") for m in _AT_RULE.finditer(css)):
            return None
        plain = _AT_RULE.sub("", css)
        found = list(_RULE.finditer(plain))
        if "".join(m.group(0) for m in found).strip() != plain.strip():
            return None
        rules: list[_Rule] = []
        for rule in found:
            declarations = _declarations(rule[2])
            if declarations is None:
                return None
            for selector in rule[1].split(","):
                part = _SELECTOR.fullmatch(selector.strip())
                if part is None or not (part[1] or part[2]):
                    return None
                names = _NAME.findall(part[2])
                ids = [name for mark, name in names if mark == "#"]
                if len(set(ids)) > 1:
                    continue  # an element has one id: this selector matches nothing
                classes = frozenset(name for mark, name in names if mark == ".")
                specificity = (len(ids), len(names) - len(ids), int(bool(part[1])), len(rules))
                tag = part[1].lower() if part[1] else None
                rules.append(
                    _Rule(tag, classes, ids[0] if ids else None, specificity, declarations)
                )
        rules.sort(key=lambda r: r.specificity)
        return PageInliner(rules, kept)

    def inline(self, page: str) -> str | None:
        """`page` with its start tags styled and its <style> elements down to their
        @-rules (all of them in the first); None if a start tag does not read as one."""
        styles = 0

        def replace(found: re.Match[str]) -> str:
            nonlocal styles
            if found[1] is not None:  # an element of text: its start tag, the text as it is
                if found[1].lower() == "style":
                    styles += 1
                    return f"<style>{self.kept}</style>" if self.kept and styles == 1 else ""
                return self._styled(found[1], found[2]) + found[3]
            if found[4] is None:  # a comment or a doctype
                return found.group(0)
            return self._styled(found[4], found[5])

        try:
            return _MARKUP.sub(replace, page)
        except _Unreadable:
            return None

    def _styled(self, name: str, attributes: str) -> str:
        """A start tag styled, kept for the next page that holds it; a link's address (in
        a page's links, the part unique to its reader) is left out of what is kept."""
        text = f"{name}{attributes}"
        styled = self._tags.get(text)
        if styled is not None:
            return styled
        link = _HREF.search(attributes) if 'href="' in attributes else None
        if link is not None and HOLE not in text:
            hollow = f"{attributes[: link.start(1)]}{HOLE}{attributes[link.end(1) :]}"
            return self._styled(name, hollow).replace(HOLE, link[1], 1)
        styled = self._style_tag(name, attributes)
        if len(self._tags) < 65536:
            self._tags[text] = styled
        return styled

    def _style_tag(self, name: str, attributes: str) -> str:
        closing = attributes.rstrip().endswith("/")
        if closing:
            attributes = attributes.rstrip()[:-1]
        values: dict[str, tuple[str, int, int]] = {}  # name -> value, its span
        read = 0
        for attribute in _ATTRIBUTE.finditer(attributes):
            if attribute.start() != read:
                break
            read = attribute.end()
            key = attribute[1].lower()
            if key not in values:  # the first of the same name counts, as in HTML
                raw = attribute[2] or ""
                value = raw[1:-1] if raw[:1] in ("'", '"') else raw
                values[key] = (html.unescape(value), attribute.start(), attribute.end())
        if attributes[read:].strip():  # a quoted ">", or what does not read as attributes
            raise _Unreadable(attributes)
        style = values.get("style")
        key = (
            name.lower(),
            values["class"][0] if "class" in values else "",
            values["id"][0] if "id" in values else None,
            style[0] if style else None,
        )
        inlined = self._styles.get(key)
        if inlined is None:
            inlined = self._cascade(*key)
            if len(self._styles) < 65536:
                self._styles[key] = inlined
        end = " />" if closing else ">"
        if not inlined:
            return f"<{name}{attributes}{end}"
        new = f' style="{inlined}"'
        if style is None:
            return f"<{name}{attributes.rstrip()}{new}{end}"
        return f"<{name}{attributes[: style[1]]}{new}{attributes[style[2] :]}{end}"

    def _cascade(self, tag: str, classes: str, own: str | None, style: str | None) -> str:
        names = frozenset(classes.split())
        matching = [
            rule
            for rule in self.rules
            if (rule.tag is None or rule.tag == tag)
            and rule.classes <= names
            and (rule.id is None or rule.id == own)
        ]
        inline = _declarations(style) if style else ()
        if inline is None:
            raise _Unreadable(style)
        merged: dict[str, tuple[str, bool]] = {}

        def put(declarations: tuple[tuple[str, str, bool], ...], important: bool) -> None:
            for prop, value, flagged in declarations:
                if flagged == important:
                    merged.pop(prop, None)
                    merged[prop] = (value, important)

        for rule in matching:
            put(rule.declarations, False)
        put(inline, False)
        for rule in matching:
            put(rule.declarations, True)
        put(inline, True)
        return (
            ";".join(
                f"{prop}:{value}{' !important' if important else ''}"
                for prop, (value, important) in merged.items()
            )
            .replace("&", "&amp;")
            .replace('"', "&quot;")
        )
