"""Normalisation of scientific text, and properties of the language that must always hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.match.acronyms import curated, definitions, learn
from digest.match.engine import InterestMatcher
from digest.match.index import Index, PaperDoc
from digest.match.naive import matches
from digest.match.query import InterestError, parse
from digest.match.text import analyse, fold, name_parts, names_match, stem, tokens


def test_unicode_case_accents_and_dashes_fold_alike() -> None:
    assert fold("ÉCOLE") == fold("école") == "ecole"
    assert fold("ﬁne") == "fine"  # NFKC ligature
    assert tokens("in\u2011context in\u2014context in-context") == ["in", "context"] * 3
    assert analyse("In-Context learning")[1] == ["incontext"]
    assert tokens("soft\u00adhyphen") == ["softhyphen"]


def test_latex_is_reduced_to_text() -> None:
    assert tokens("$\\mu$P and μP and muP") == ["mup", "and", "mup", "and", "mup"]
    assert tokens('Schr\\"odinger, Schr\\"{o}dinger, Schrödinger') == ["schrodinger"] * 3
    assert tokens("$\\mathcal{O}(n^2)$ with $\\varepsilon$") == ["o", "n", "2", "with", "epsilon"]


def test_acronym_plurals_fold_but_ordinary_words_keep_their_s() -> None:
    assert tokens("LLMs GPUs ViTs MoEs CNNs") == ["llm", "gpu", "vit", "moe", "cnn"]
    assert tokens("Graphs GANs Is") == ["graphs", "gan", "is"]


def test_stems_and_spelling() -> None:
    assert stem("networks") == stem("network")
    assert stem("quantisation") == stem("quantization")
    assert stem("gpt4") == "gpt4"


def test_author_names_fold_accents_and_match_initials() -> None:
    ada = name_parts("Ada King Lovelace")
    assert name_parts("Lovelace, Ada") == ("ada", "lovelace")
    assert names_match(name_parts("A. Lovelace"), ada)
    assert names_match(name_parts("Ada K. Lovelace"), ada)
    assert not names_match(name_parts("K. A. Lovelace"), ada)  # order of given names counts
    assert not names_match(name_parts("A. Babbage"), ada)
    assert names_match(name_parts("Emilie du Chatelet"), name_parts("Émilie du Châtelet"))


def test_acronyms_are_learned_from_abstracts_and_the_table_wins() -> None:
    text = "We propose Sparse Token Routing (STR) and physics-informed neural networks (PINNs)."
    assert dict(definitions(text)) == {
        "str": ("sparse", "token", "routing"),
        "pinn": ("physics", "informed", "neural", "networks"),
    }
    table = learn([text, "the layer norm (LLM) trick"])
    assert table["str"] == {("sparse", "token", "routing")}
    assert table["llm"] == curated()["llm"]  # the curated long form, not the bogus one
    assert "at" not in learn(["adversarial training (AT) helps"])  # a word, not an acronym


def test_learned_acronyms_match_their_long_form() -> None:
    papers = [
        PaperDoc(1, "Routing", "We propose Sparse Token Routing (STR) for speed."),
        PaperDoc(2, "Other", "Sparse token routing again, without the acronym."),
        PaperDoc(3, "Third", "STR is fast."),
    ]
    hits = InterestMatcher().match(papers, ["STR"])["str"]
    assert sorted(hit.paper_id for hit in hits) == [1, 2, 3]


text = st.text(
    alphabet=st.sampled_from(list("aAbBéÉ- \u2013\u00ad$\\{}\"'()μﬁ.,0123LMsS")), max_size=40
)


@settings(deadline=None)  # no timing in tests: a loaded machine must not fail them
@given(text)
def test_folding_is_idempotent(value: str) -> None:
    assert fold(fold(value)) == fold(value)
    once = tokens(value)
    assert tokens(" ".join(once)) == once


WORDS = ["graph", "graphs", "neural", "network", "llm", "moe", "in", "context", "quantum"]
term = st.one_of(
    st.sampled_from(WORDS),
    st.lists(st.sampled_from(WORDS), min_size=2, max_size=3).map(lambda w: '"' + " ".join(w) + '"'),
    st.sampled_from(WORDS).map(lambda w: "title:" + w),
    st.sampled_from(["in-context", "author:Lovelace", 'author:"A. Babbage"', "cat:cs"]),
)
line = st.lists(term, min_size=1, max_size=3).map(" ".join)
paper = st.builds(
    lambda title, abstract, authors, cats: (title, abstract, authors, cats),
    st.lists(st.sampled_from([*WORDS, "large", "language", "model"]), max_size=6).map(" ".join),
    st.lists(st.sampled_from([*WORDS, "of", "mixture", "experts", "-"]), max_size=12).map(" ".join),
    st.lists(st.sampled_from(["Ada Lovelace", "Charles Babbage", "Alan Turing"]), max_size=2),
    st.lists(st.sampled_from(["cs.LG", "cs.CL", "quant-ph"]), max_size=2),
)


def _papers(raw: list[tuple[str, str, list[str], list[str]]]) -> list[PaperDoc]:
    return [PaperDoc(i, t, a, None, tuple(au), tuple(c)) for i, (t, a, au, c) in enumerate(raw)]


@settings(max_examples=150, deadline=None)
@given(st.lists(paper, min_size=1, max_size=8), line, term)
def test_a_query_never_matches_a_paper_it_excludes(
    raw: list[tuple[str, str, list[str], list[str]]], wanted: str, excluded: str
) -> None:
    papers = _papers(raw)
    try:
        query = parse(f"{wanted} -{excluded}")
    except InterestError:
        return  # e.g. "graph -graph": refused, never evaluated
    result = InterestMatcher().match(papers, [query.canonical, excluded, wanted])
    found = {hit.paper_id for hit in result[query.canonical]}
    assert not found & {hit.paper_id for hit in result[parse(excluded).canonical]}
    assert found <= {hit.paper_id for hit in result[parse(wanted).canonical]}


@settings(max_examples=150, deadline=None)
@given(st.lists(paper, min_size=1, max_size=8), st.lists(line, min_size=1, max_size=3))
def test_the_engine_agrees_with_the_paper_by_paper_reference(
    raw: list[tuple[str, str, list[str], list[str]]], lines: list[str]
) -> None:
    papers = _papers(raw)
    text = " OR ".join(f"({part})" for part in lines)
    query = parse(text)
    assert parse(query.canonical).canonical == query.canonical
    index = Index(papers)
    expected = {p.id for doc, p in enumerate(papers) if matches(index, query.root, doc)}
    found = InterestMatcher().match(papers, [text])[query.canonical]
    assert {hit.paper_id for hit in found} == expected
