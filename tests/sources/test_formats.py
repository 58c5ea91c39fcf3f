"""Parsing each source format: our fixtures and the real recorded responses in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.sources.arxiv import parse_api, parse_listing
from digest.sources.batch import SourceError
from digest.sources.feeds import parse_feed
from digest.sources.files import detect_format, parse_bytes
from digest.sources.hf import parse_daily
from digest.sources.ingest import clean_text
from tests.kit.env import SHARED
from tests.kit.sources import FIXTURES

RECORDED = SHARED / "fixtures" / "sources"


def ours(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def recorded(name: str) -> bytes:
    path = RECORDED / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path.read_bytes()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (r"$\mu$P Transfer", "μP Transfer"),
        (r"Removing the $\ln\ln T$ Term", "Removing the lnln T Term"),
        (r"$\sqrt{s_{NN}}=200$ GeV", "√(s_NN)=200 GeV"),
        (r"$ω$Test: WebView testing", "ωTest: WebView testing"),
        ("a $800 grant and $5 fee", "a $800 grant and $5 fee"),
        (r"\textbf{bold} claims, ``quoted''", "bold claims, \u201cquoted\u201d"),
        ("Graphs &amp; $2.6&lt;\\eta&lt;4$\n  wrapped", "Graphs & 2.6<η<4 wrapped"),
    ],
)
def test_titles_are_readable(raw: str, shown: str) -> None:
    assert clean_text(raw) == shown


def test_listing_announce_types_versions_and_old_style_ids() -> None:
    batch = parse_listing(ours("arxiv-listing-day1.xml"), "day1")
    got = [(p.identity()[0], p.identity()[2], p.announce_type) for p in batch.papers]
    assert got == [
        ("arxiv:2611.10001", 1, "new"),
        ("arxiv:2611.10002", 1, "cross-list"),
        ("arxiv:2609.04321", 3, "replacement"),
        ("arxiv:hep-th/9901001", 4, "replacement"),
        ("arxiv:2611.10003", 1, "new"),
    ]
    assert batch.errors == [
        "day1: entry 6 (oai:arXiv.org:2611.10004v1): title: Value error, title is empty"
    ]
    first = batch.papers[0]
    assert first.title == "μP Transfer for Mixture-of-Experts: Tuning Once at Small Scale"
    assert first.abstract.startswith("We extend the maximal update parametrization (μP) to")
    assert not first.abstract.startswith("arXiv:")
    assert first.authors == ["Zoë Müller", "Jiří Novák", "Ana Ibáñez"]
    assert batch.papers[1].categories == ["eess.AS", "cs.CL"]
    assert batch.papers[4].authors == [] and batch.papers[4].categories == []


def test_legacy_rdf_listing() -> None:
    batch = parse_listing(ours("arxiv-listing-rdf.xml"), "rdf")
    assert [(p.identity()[1], p.announce_type, p.primary_category) for p in batch.papers] == [
        ("1811.00001", "new", "hep-th"),
        ("1811.00002", "cross-list", "quant-ph"),
        ("hep-th/9901001", "replacement", "hep-th"),
    ]
    assert batch.papers[0].title == "Black Hole Entropy from \U0001d4a9=4 Amplitudes."
    assert batch.papers[0].abstract == "We compute the entropy for 0<x<1 exactly."
    assert batch.papers[0].authors == ["Jane Doe", "Richard Roe"]


def test_truncated_document_keeps_the_complete_entries() -> None:
    batch = parse_listing(ours("arxiv-listing-truncated.xml"), "cut.xml")
    assert [p.identity()[1] for p in batch.papers] == ["2611.20001", "2611.20002"]
    assert batch.fetched == 3
    assert [w.split("(")[0] for w in batch.warnings] == ["cut.xml: malformed document "]
    assert batch.errors == [
        "cut.xml: entry 3 (oai:arXiv.org:2611.20003v1): entry cut off by the malformed document"
    ]


def test_arxiv_api_fields_and_total() -> None:
    batch, total = parse_api(ours("arxiv-api-page1.xml"), "api")
    assert total == 3
    moe, helium = batch.papers
    assert moe.title == "μP Transfer for Mixture-of-Experts: Tuning Once at Small Scale"
    assert moe.comment == "12 pages, 4 figures"
    assert moe.pdf_url == "http://arxiv.org/pdf/2611.10001v1"
    assert moe.authors == ["Ada Lovelace", "Émile Borel"]
    assert helium.identity() == ("arxiv:cond-mat/0412498", "cond-mat/0412498", 3)
    assert helium.doi == "10.1103/PhysRevB.71.000001"
    assert helium.journal_ref == "Phys. Rev. B 71, 000001 (2005)"
    assert helium.primary_category == "cond-mat.stat-mech"


def test_arxiv_api_error_document_is_an_error() -> None:
    with pytest.raises(SourceError, match="arXiv API error: incorrect id format for abc"):
        parse_api(ours("arxiv-api-error.xml"), "api")


def test_hf_daily_extras_and_a_wrong_type_skips_only_that_entry() -> None:
    batch = parse_daily(ours("hf-daily-2026-11-20.json"), "hf")
    assert [p.arxiv_id for p in batch.papers] == ["2611.10001", "2611.10009"]
    moe, plain = batch.papers
    assert (moe.upvotes, moe.github_repo, moe.project_page) == (
        42,
        "https://github.com/example/mup-moe",
        "https://example.org/mup-moe",
    )
    assert moe.ai_keywords == [
        "maximal update parametrization",
        "mixture-of-experts",
        "hyperparameter transfer",
    ]
    assert moe.ai_summary and moe.ai_summary.startswith("muP hyperparameters")
    assert (plain.ai_summary, plain.ai_keywords, plain.github_repo) == (None, None, None)
    assert len(batch.errors) == 1
    assert batch.errors[0].startswith("hf: entry 3 (2611.10010): upvotes: Input should be")


def test_hf_response_of_the_wrong_shape_is_an_error() -> None:
    with pytest.raises(SourceError, match="expected a JSON list of papers, got dict"):
        parse_daily(ours("hf-wrong-type.json"), "hf")
    with pytest.raises(SourceError, match="not valid JSON"):
        parse_daily(b'[{"paper": ', "hf")


def test_generic_feeds_rss_and_atom() -> None:
    blog = parse_feed(ours("lab-blog.xml"), "blog", source="feed:lab")
    ids = [p.identity()[0] for p in blog.papers]
    assert ids[0] == "doi:10.1000/example.2026.001"
    assert ids[1] == "arxiv:2611.10005"
    assert ids[2].startswith("title:")
    assert blog.papers[0].abstract == (
        "We propose a robust variant of optimal transport & test it on single-cell data."
    )
    assert {p.source for p in blog.papers} == {"feed:lab"}
    toc = parse_feed(ours("journal-toc.atom"), "toc")
    assert toc.papers[0].title == "Kernel Methods for Sparse Signals"
    assert toc.papers[0].identity()[0] == "doi:10.2000/jer.2026.77"


def test_not_a_feed_is_an_error() -> None:
    with pytest.raises(SourceError, match="not an RSS or Atom feed"):
        parse_feed(b"this is plain text", "junk")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("arxiv-listing-day1.xml", "arxiv"),
        ("arxiv-listing-truncated.xml", "arxiv"),
        ("arxiv-listing-rdf.xml", "arxiv"),
        ("arxiv-api-page1.xml", "arxiv-api"),
        ("hf-daily-2026-11-20.json", "hf"),
        ("hf-wrong-type.json", "hf"),
        ("lab-blog.xml", "feed"),
        ("journal-toc.atom", "feed"),
    ],
)
def test_detect_format_of_our_fixtures(name: str, fmt: str) -> None:
    assert detect_format(ours(name), name) == fmt


def test_detect_format_of_jsonl_and_unknown(tmp_path: Path) -> None:
    assert detect_format(b'{"title": "x"}\n{"title": "y"}\n', "p.jsonl") == "jsonl"
    with pytest.raises(SourceError, match="cannot tell the format of"):
        detect_format(b"title,abstract\n", "papers.csv")


# (file, format, entries read, papers kept, errors)
RECORDED_FILES = [
    ("arxiv-api-1.xml", "arxiv-api", 10, 10, 0),
    ("arxiv-api-2.xml", "arxiv-api", 10, 10, 0),
    ("arxiv-api-3.xml", "arxiv-api", 100, 100, 0),
    ("arxiv-api-4.xml", "arxiv-api", 20, 20, 0),
    ("arxiv-rss-1.xml", "arxiv", 87, 86, 1),
    ("arxiv-rss-2.xml", "arxiv", 3, 3, 0),
    ("arxiv-rss-3.xml", "arxiv", 0, 0, 0),
    ("arxiv-rss-4.xml", "arxiv", 3, 3, 0),
    ("hf-daily-1.json", "hf", 30, 30, 0),
    ("hf-daily-2.json", "hf", 30, 30, 0),
    ("hf-daily-3.json", "hf", 3, 3, 0),
]


@pytest.mark.parametrize(("name", "fmt", "read", "kept", "errors"), RECORDED_FILES)
def test_recorded_responses(name: str, fmt: str, read: int, kept: int, errors: int) -> None:
    data = recorded(name)
    assert detect_format(data, name) == fmt
    batch = parse_bytes(data, detect_format(data, name), name)
    assert (batch.fetched, len(batch.papers), len(batch.errors)) == (read, kept, errors)
    assert len(batch.warnings) == (1 if name == "arxiv-rss-1.xml" else 0)
    for paper in batch.papers:
        assert paper.identity()[0].startswith("arxiv:")
        assert paper.abstract and "Announce Type" not in paper.abstract


def test_recorded_special_cases() -> None:
    api = parse_api(recorded("arxiv-api-3.xml"), "api3")[0].papers
    assert any(p.title.startswith("ωTest") for p in api)
    assert any(p.identity()[1] == "hep-ph/0301050" and p.identity()[2] == 2 for p in api)
    cs_lg = parse_api(recorded("arxiv-api-4.xml"), "api4")[0].papers
    assert any("Remove the lnln T Term" in p.title for p in cs_lg)
    legacy = parse_listing(recorded("arxiv-rss-4.xml"), "rss4").papers
    assert [p.announce_type for p in legacy] == ["new", "cross-list", "replacement"]
    assert "$" not in legacy[0].title and "p^↑+p" in legacy[0].title
    listing = parse_listing(recorded("arxiv-rss-1.xml"), "rss1").papers
    assert {p.announce_type for p in listing} == {"new", "cross-list"}
