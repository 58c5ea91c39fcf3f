"""Text helpers: wrapping lays lines out as the standard library's textwrap would."""

from __future__ import annotations

import textwrap

from hypothesis import given
from hypothesis import strategies as st

from digest.mail.text import _fill, one_line, wrap

PIECES = [*"ab -\t\n\xa0é.", "https://example.org/a/long/path", "w" * 30, "abcdefgh"]


@given(
    st.lists(st.sampled_from(PIECES), max_size=120).map(lambda pieces: one_line("".join(pieces))),
    st.integers(1, 90),
    st.sampled_from(["", "    ", "x" * 40]),
    st.sampled_from(["", "1.  ", "10. ", "y" * 80]),
)
def test_lines_are_filled_as_textwrap_fills_them(
    text: str, width: int, indent: str, first: str
) -> None:
    """Words longer than a line, URLs, indents wider than the width, empty text."""
    expected = textwrap.fill(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    assert _fill(text.split(" "), width, first, indent) == expected


def test_a_wrapped_paragraph_keeps_to_its_width() -> None:
    text = "Quantization of large language models " * 6 + "https://example.org/" + "x" * 90
    lines = wrap(text, 40, "    ", "1.  ").split("\n")
    assert lines[0].startswith("1.  Quantization")
    assert all(line.startswith("    ") for line in lines[1:])
    assert all(len(line) <= 40 for line in lines if "://" not in line)
    assert lines[-1] == "    https://example.org/" + "x" * 90  # a URL is never broken
