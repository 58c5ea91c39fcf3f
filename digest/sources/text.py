"""Text cleanup shared by the sources: HTML tags out, LaTeX made readable."""

from __future__ import annotations

import re
from functools import cache

from pylatexenc.latex2text import LatexNodes2Text

_TAG = re.compile(r"<[^>]{0,500}>")
# A $...$ span that looks like math: no blank at either edge, and a LaTeX sign or a short
# token inside, so prices such as "$800 and $5" stay as they are.
_MATH = re.compile(r"\$(?=\S)([^$]{1,300}?)(?<=\S)\$")
_MATH_SIGN = re.compile(r"[\\^_{}=<>+]")
_TEXT_MACRO = re.compile(
    r"\\(?:textbf|textit|textsf|textsl|textup|textmd|textnormal|emph|texttt|textsc|textrm"
    r"|mathrm|mathbf|mathit|mathsf|mathtt|underline)\{([^{}]*)\}"
)
# An accent command on one letter, braced or not: \"o, \"{o}, {\"o}, \'e, \v{s}, \c{c}.
_ACCENT = re.compile(
    r"\{?\\(?:[\"'`^~=.]|[uvHckrbd](?=[{\s]))\s*(?:\{\s*[A-Za-z]\s*\}|[A-Za-z])\}?"
)


def strip_html(text: str) -> str:
    """Drop HTML tags (feeds put <p> and <a> in summaries and author lists)."""
    return _TAG.sub(" ", text)


@cache
def _converter() -> LatexNodes2Text:
    return LatexNodes2Text(math_mode="text")


def _math(found: re.Match[str]) -> str:
    body = found.group(1)
    if not _MATH_SIGN.search(body) and (len(body) > 3 or body.isdigit()):
        return found.group(0)
    try:
        text = _converter().latex_to_text(found.group(0))
    except Exception:  # pylatexenc is tolerant; anything it still rejects stays raw
        return found.group(0)
    return str(text).strip() or found.group(0)


def _accent(found: re.Match[str]) -> str:
    try:
        text = str(_converter().latex_to_text(found.group(0))).strip()
    except Exception:  # anything pylatexenc still rejects stays raw
        return found.group(0)
    return text if len(text) == 1 else found.group(0)


def readable_latex(text: str) -> str:
    """Turn inline LaTeX into readable text: `$\\mu$P` -> `μP`, ``quotes'' -> “quotes”."""
    if "$" in text:
        text = _MATH.sub(_math, text)
    if "\\" in text:
        text = _TEXT_MACRO.sub(r"\1", text)
        text = _ACCENT.sub(_accent, text)
    return text.replace("``", "\u201c").replace("''", "\u201d")
