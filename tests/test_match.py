"""The simple matcher: whole words and phrases, case-insensitive, every term required."""

from __future__ import annotations

import pytest

from digest.match import InterestError, PaperDoc, SimpleMatcher, parse

PAPERS = [
    PaperDoc(1, "Mixture-of-Experts Routing", "We study sparse MoE layers in LLMs."),
    PaperDoc(2, "Diffusion Models", "Experts in a mixture, and mixtures of many experts."),
    PaperDoc(3, "Diffusional creep", "Metals at high temperature."),
    PaperDoc(4, "ÉCOLE of Diffusion", "A survey of in-context learning for diffusion."),
]


def matched(line: str) -> list[int]:
    result = SimpleMatcher().match(PAPERS, [line])
    return [hit.paper_id for hit in result[parse(line).canonical]]


def test_words_are_whole_and_case_insensitive() -> None:
    assert matched("diffusion") == [4, 2]  # title twice beats title once
    assert matched("DIFFUSION") == [4, 2]
    assert matched("école") == [4]


def test_phrase_words_must_be_consecutive_and_dashes_split_words() -> None:
    assert matched('"mixture of experts"') == [1]
    assert matched("in-context") == [4]
    assert matched('"in context" diffusion') == [4]


def test_all_terms_must_match() -> None:
    assert matched("diffusion metals") == []
    assert matched("experts mixture") == [1, 2]


def test_each_distinct_interest_is_evaluated_once() -> None:
    result = SimpleMatcher().match(PAPERS, ["Diffusion", "diffusion ", "diffusion"])
    assert list(result) == ["diffusion"]
    hit = result["diffusion"][0]
    assert hit.terms == ("diffusion",)
    assert hit.score > result["diffusion"][1].score


def test_equivalent_lines_share_a_canonical_form() -> None:
    assert parse('b  a "X Y"').canonical == parse('"x y" A b').canonical


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ('"unclosed', "unbalanced quote (at column 1)"),
        ("ok ---", "'---' has no letters or digits (at column 4)"),
        ("x" * 301, "at most 300 characters"),
    ],
)
def test_invalid_lines_are_refused_with_the_reason(line: str, message: str) -> None:
    with pytest.raises(InterestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(line)
