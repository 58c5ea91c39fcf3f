"""Text helpers: wrapping lays lines out as the standard library's textwrap would."""

from __future__ import annotations

import textwrap

from hypothesis import given
from hypothesis import strategies as st

from digest.mail.text import one_line, wrap

PIECES = [*"ab -\t\n\xa0é.", "https://example.org/a/long/path", "w" * 30, "abcdefgh"]


def _textwrap(text: str, width: int, indent: str, first: str | None) -> str:
    """`wrap` as textwrap.fill gives it (long words cut first, as `wrap` cuts them)."""
    room = max(width - len(indent), 20)
    words: list[str] = []
    for word in one_line(text).split(" "):
        if len(word) > room and "://" not in word:
            words.extend(word[i : i + room] for i in range(0, len(word), room))
        else:
            words.append(word)
    return textwrap.fill(
        " ".join(words),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


@given(
    st.lists(st.sampled_from(PIECES), max_size=120).map("".join),
    st.integers(1, 90),
    st.sampled_from(["", "    ", "x" * 40]),
    st.sampled_from([None, "", "1.  ", "10. ", "y" * 80]),
)
def test_wrapping_lays_lines_out_as_textwrap_does(
    text: str, width: int, indent: str, first: str | None
) -> None:
    """Words longer than a line, URLs, indents wider than the width, empty text."""
    assert wrap(text, width, indent, first) == _textwrap(text, width, indent, first)


def test_a_wrapped_paragraph_keeps_to_its_width() -> None:
    text = "Quantization of large language models " * 6 + "https://example.org/" + "x" * 90
    lines = wrap(text, 40, "    ", "1.  ").split("\n")
    assert lines[0].startswith("1.  Quantization")
    assert all(line.startswith("    ") for line in lines[1:])
    assert all(len(line) <= 40 for line in lines if "://" not in line)
    assert lines[-1] == "    https://example.org/" + "x" * 90  # a URL is never broken
