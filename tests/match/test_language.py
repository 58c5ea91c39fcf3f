"""The interest language: every construct parses to the right tree, every error is refused
with its reason and column, and the engine matches, ranks and explains."""

from __future__ import annotations

import pytest

from digest.match.engine import InterestMatcher
from digest.match.index import PaperDoc
from digest.match.query import And, InterestError, Not, Or, Term, parse

PAPERS = [
    PaperDoc(1, "Mixture-of-Experts Routing", "We study sparse MoE layers in LLMs."),
    PaperDoc(2, "Diffusion Models", "Experts in a mixture, and mixtures of many experts."),
    PaperDoc(3, "Diffusional creep", "Metals at high temperature."),
    PaperDoc(4, "ÉCOLE of Diffusion", "A survey of in-context learning for diffusion."),
    PaperDoc(
        5,
        "Analytical engines",
        "Notes on the engine.",
        upvotes=None,
        authors=("Ada King Lovelace", "Charles Babbage"),
        categories=("cs.LG", "math.HO"),
    ),
    PaperDoc(6, 'Schr\\"odinger bridges with $\\mu$P', "A study of bridges.", upvotes=3),
]


def matched(line: str, papers: list[PaperDoc] = PAPERS) -> list[int]:
    result = InterestMatcher().match(papers, [line])
    return [hit.paper_id for hit in result[parse(line).canonical]]


def test_words_side_by_side_are_one_loose_phrase() -> None:
    assert parse("diffusion models").root == Term("", ("diffusion", "models"))
    assert parse("diffusion models").root == parse("diffusion-models").root
    assert parse("diffusion AND models").root == And(
        (Term("", ("diffusion",)), Term("", ("models",)))
    )
    assert parse('"diffusion" models').root == And(
        (Term("", ("diffusion",), True), Term("", ("models",)))
    )
    assert parse("title:vision transformers").root == Term("title", ("vision", "transformers"))
    assert parse("author:hinton diffusion").canonical == "author:hinton diffusion"
    assert parse('"mixture of experts"').root == Term("", ("mixture", "of", "experts"), True)
    assert parse("in-context").root == Term("", ("in", "context"))


def test_or_separates_phrases_exclusions_take_one_word_and_parentheses_group() -> None:
    a, b, c = (Term("", (w,)) for w in "abc")
    assert parse("a OR b c").root == Or((a, Term("", ("b", "c"))))
    assert parse("a b OR c").root == Or((Term("", ("a", "b")), c))
    assert parse("(a OR b) c").root == And((Or((a, b)), c))
    assert parse("c -a b").root == And((Not(a), b, c))  # an exclusion ends a phrase
    assert parse("a (b OR c)").root == And((Or((b, c)), a))  # children in canonical order
    assert parse("a -b").root == And((Not(b), a))
    assert parse('a -"b c"').root == And((Not(Term("", ("b", "c"), True)), a))
    assert parse("a -(b OR c)").root == And((Not(Or((b, c))), a))
    assert parse("a AND b").root == parse("a (b)").root == And((a, b))
    assert parse("a or b").root == Term("", ("a", "or", "b"))


def test_fields() -> None:
    assert parse("title:diffusion").root == Term("title", ("diffusion",))
    assert parse('abstract:"score matching"').root == Term("abstract", ("score", "matching"), True)
    assert parse('author:"Ada Lovelace"').root == Term("author", ("ada", "lovelace"))
    assert parse("author:Lovelace").root == Term("author", ("lovelace",))
    assert parse("cat:cs.LG").root == Term("cat", ("cs.lg",))
    assert parse("title:(a OR b)").root == Or((Term("title", ("a",)), Term("title", ("b",))))


def test_canonical_form_is_shared_by_equivalent_lines_and_parses_to_itself() -> None:
    assert parse('b AND a "X Y"').canonical == parse('"x y" A AND b').canonical
    assert parse("state space models").canonical == "state-space-models"
    assert parse("State-space models").canonical == "state-space-models"
    assert parse("(b OR a) c").canonical == parse("c (a OR b)").canonical == "(a OR b) c"
    assert parse("a AND a AND (a)").canonical == "a"
    for line in [
        'author:"A. Lovelace" cat:cs.LG',
        'x -"y z" (p OR title:q)',
        "in-context",
        "a b AND c d",
        "like:2401.04088 -survey",
    ]:
        canonical = parse(line).canonical
        assert parse(canonical).canonical == canonical


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in "()[].*+?" else ch for ch in text)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("x" * 301, "at most 300 characters"),
        ('"unclosed', "unbalanced quote (at column 1)"),
        ('ok "a b" "c', "unbalanced quote (at column 10)"),
        ("ok ---", "'---' has no letters or digits (at column 4)"),
        ('"!!"', "'\"!!\"' has no letters or digits (at column 1)"),
        (
            "year:2024 llm",
            "unknown field 'year' (use title:, abstract:, author:, cat:, like:) (at column 1)",
        ),
        ("(a OR b", "unmatched '(' (at column 1)"),
        ("a OR b)", "unmatched ')' (at column 7)"),
        ("a () b", "empty parentheses (at column 3)"),
        ("OR a", "'OR' must stand between two terms (at column 1)"),
        ("a OR", "'OR' must stand between two terms (at column 3)"),
        ("a OR OR b", "'OR' must stand between two terms (at column 3)"),
        ("a OR -b", "an exclusion cannot be an alternative of OR (at column 6)"),
        ("a -", "'-' has no letters or digits (at column 3)"),
        ("a -)", "'-' must be followed by the term to exclude (at column 3)"),
        ("a --b", "'-' cannot exclude an exclusion (at column 4)"),
        ("title:author:x", "'author:' cannot be used inside 'title:' (at column 7)"),
        ("cat:", "'cat:' must be followed by a term (at column 1)"),
        ("a title: b", "'title:' must be followed by a term (at column 3)"),
        ('cat:"cs LG"', "cat: takes one category such as cs.LG"),
        ("author:123", "author: needs a name"),
        ("-llm", "needs at least one term to look for, not only exclusions"),
        ("-a -b", "needs at least one term to look for"),
        ("(-a) OR b", "needs at least one term to look for"),
        ("llm -llm", "llm is both required and excluded"),
        ("title:(" + " OR ".join(f"w{i}" for i in range(40)) + ")", "too complex"),
        ("Diffusion -diffusion", "diffusion is both required and excluded"),
        ("a AND", "'AND' must stand between two terms"),
        ("a\x00b", "an interest cannot hold a NUL character (at column 2)"),
        ("like:", "'like:' must be followed by a term (at column 1)"),
        ("like:yesterday", "like: takes an arXiv id such as 2401.04088 or a paper number"),
    ],
)
def test_invalid_lines_are_refused_with_the_reason(line: str, message: str) -> None:
    with pytest.raises(InterestError, match=_escape(message)):
        parse(line)


def test_an_error_knows_its_line_and_column() -> None:
    with pytest.raises(InterestError) as caught:
        parse("llm (moe")
    assert caught.value.line == "llm (moe"
    assert caught.value.column == 4


def test_words_are_stemmed_quotes_are_exact() -> None:
    assert matched("mixtures") == [1, 2]  # stems: mixture = mixtures; title first
    assert matched('"mixtures"') == [2]
    assert matched("école") == [4]
    assert matched("DIFFUSION") == matched("diffusion") == [2, 4]


def test_dashes_phrases_and_joined_words_are_alike() -> None:
    assert matched('"mixture of experts"') == [1]
    assert matched("in-context") == matched("incontext") == matched('"in context"') == [4]
    assert matched("in\u2013context") == [4]  # en dash


def test_acronyms_match_long_forms_and_plurals() -> None:
    # "Experts in a mixture": the long form's words within a few words, in any order.
    assert matched("MoE") == matched("mixture of experts") == [1, 2]
    assert matched("LLM") == matched("llms") == [1]
    assert matched("ICL") == [4]
    assert matched('"large language models"') == [1]


def test_latex_is_text() -> None:
    assert matched("schrodinger") == [6]
    assert matched("muP") == matched("μP") == matched("$\\mu$P") == [6]


def test_exclusions_and_alternatives() -> None:
    assert sorted(matched("diffusion -creep")) == [2, 4]
    assert matched("diffusion -title:models") == [4]
    assert matched("(metals OR moe) -title:routing") == [3, 2]
    assert matched("experts AND mixture") == [1, 2]
    assert matched("experts mixture") == [1, 2]  # a phrase's words, near each other
    assert matched('"experts mixture"') == []  # quoted: side by side, in this order
    assert matched("experts creep") == []  # not near each other: never in one paper


def test_authors_with_initials_and_accents_and_categories() -> None:
    assert matched('author:"Ada Lovelace"') == [5]
    assert matched('author:"A. Lovelace"') == [5]
    assert matched('author:"A. K. Lovelace"') == [5]
    assert matched('author:"Lövelace"') == [5]
    assert matched('author:"B. Lovelace"') == []
    assert matched("cat:cs.LG") == matched("cat:cs") == [5]
    assert matched("cat:cs.AI") == []


def test_each_distinct_interest_is_evaluated_once_and_hits_say_why() -> None:
    result = InterestMatcher().match(PAPERS, ["Diffusion", "diffusion ", "diffusion"])
    assert set(result) == {"diffusion", "Diffusion", "diffusion "}  # lines as given, too
    assert result["Diffusion"] is result["diffusion "] is result["diffusion"]
    first, second = result["diffusion"]
    assert first.score > second.score  # title twice beats title once
    result = InterestMatcher().match(PAPERS, ["(creep OR metals) temperature"])
    (hit,) = result["(creep OR metals) temperature"]
    assert hit.terms == ("creep", "metals", "temperature")


def test_title_outweighs_abstract_and_upvotes_nudge() -> None:
    papers = [
        PaperDoc(1, "Notes", "A paper about graphs and more graphs."),
        PaperDoc(2, "Graphs", "A paper about notes."),
        PaperDoc(3, "Graphs", "A paper about notes.", upvotes=50),
    ]
    assert matched("graphs", papers) == [3, 2, 1]


def test_an_empty_batch_or_empty_paper_matches_nothing() -> None:
    assert InterestMatcher().match([], ["llm", "a -b"]) == {"llm": [], "a -b": [], "-b a": []}
    assert matched("a -b", [PaperDoc(1, "", "")]) == []


def test_programming_languages_are_words_of_their_own() -> None:
    papers = [
        PaperDoc(1, "Fuzzing C++ compilers", "Templates in C++."),
        PaperDoc(2, "A C# analyser", "Roslyn and C#."),
        PaperDoc(3, "Type inference for C", "The C language, and F# too."),
    ]
    assert matched("C++", papers) == [1]
    assert matched("C#", papers) == [2]
    assert matched("F#", papers) == [3]
    assert matched('"C"', papers) == [3]
    assert parse("C++").canonical == "c++"
    assert parse("C#").canonical == "c#"


def test_chinese_japanese_and_korean_are_read_as_pairs_of_characters() -> None:
    papers = [
        PaperDoc(1, "大语言模型的推理能力评测", "我们评测大语言模型。"),
        PaperDoc(2, "语言学概论", "一本关于语言的书。"),
        PaperDoc(3, "大規模言語モデルの評価", "日本語の評価。"),
        PaperDoc(4, "거대 언어 모델 평가", "한국어 평가."),
    ]
    assert matched("大语言模型", papers) == [1]
    assert sorted(matched("语言", papers)) == [1, 2]
    assert matched("言語モデル", papers) == [3]
    assert matched("언어 모델", papers) == [4]


def test_zero_width_characters_are_folded_away() -> None:
    assert parse("dif\u200bfusion mo\u200ddels").canonical == "diffusion-models"
    assert matched("Diffusion\ufeff") == matched("diffusion")
