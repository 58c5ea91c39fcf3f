"""Commands about papers: ingest, sources, search, explain."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from digest.cli import common
from digest.cli.common import USAGE, console, err, fail
from digest.clock import utcnow
from digest.config import Settings, SourceConfig
from digest.match.query import InterestError
from digest.sources.files import ingest_path
from digest.sources.runner import SourceReport, ingest_source
from digest.sources.runner import status as source_status
from digest.subscribers import SubscriberError

app = typer.Typer()


class SourceChoice(StrEnum):
    """A source to fetch from (`digest ingest --source`)."""

    arxiv = "arxiv"
    arxiv_api = "arxiv-api"
    hf = "hf"
    feed = "feed"


class FormatChoice(StrEnum):
    """A file format (`digest ingest --format`)."""

    jsonl = "jsonl"
    arxiv = "arxiv"
    arxiv_api = "arxiv-api"
    hf = "hf"
    feed = "feed"


@app.command()
def ingest(
    target: Annotated[
        str | None,
        typer.Argument(help="A file to store (JSONL or a saved response), or a feed URL."),
    ] = None,
    fmt: Annotated[
        FormatChoice | None,
        typer.Option("--format", help="The file's format (default: detected from its content)."),
    ] = None,
    source: Annotated[
        SourceChoice | None,
        typer.Option("--source", help="Fetch from a source instead of reading a file."),
    ] = None,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", "-c", help="arXiv category, e.g. cs.LG; repeat for more."),
    ] = None,
    day: Annotated[
        datetime | None,
        typer.Option(
            "--date", formats=["%Y-%m-%d"], help="hf: the day's list; arxiv-api: the first day."
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="arxiv-api: the last day (default: --date)."),
    ] = None,
) -> None:
    """Store papers from a file (format detected) or from a source; bad entries are reported."""
    settings = common.settings()
    if source is None:
        if target is None or not Path(target).is_file():
            fail(f"no such file: {target}", USAGE)
        with common.engine(settings) as engine:
            result = ingest_path(engine, Path(target), FormatChoice(fmt).value if fmt else None)
    else:
        since = day.date() if day else None
        result = _fetch(settings, source, target, category or [], since, until)
    report = result.report
    for problem in report.warnings:
        err.print(f"[yellow]warning[/] {problem}", highlight=False)
    for problem in report.errors:
        err.print(f"[yellow]skipped[/] {problem}", highlight=False)
    if source is None:
        console.print(
            f"{target}: {report.fetched} read, {report.new} new, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.errors)} skipped"
        )
    else:
        console.print(result.line(with_error=False), highlight=False)
    if result.error:  # said once, on standard error
        fail(result.error)


def _fetch(
    settings: Settings,
    source: SourceChoice,
    url: str | None,
    categories: list[str],
    since: date | None,
    until: datetime | None,
) -> SourceReport:
    """Fetch and store one source given on the command line."""
    try:
        config = SourceConfig(kind=source.value, categories=categories, url=url)
    except ValidationError as exc:
        fail("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()), USAGE)
    with common.engine(settings) as engine:
        last = until.date() if until else since
        return ingest_source(engine, settings, config, utcnow(), since=since, until=last)


@app.command()
def sources() -> None:
    """Show each source with the result of its last ingest."""
    settings = common.settings()
    with common.engine(settings) as engine:
        rows = source_status(engine, settings)
    if not rows:
        console.print("no sources configured (DIGEST_SOURCES) and no ingest recorded")
    for name, kind, run in rows:
        if run is None:
            console.print(f"{name} ({kind}): never ingested", highlight=False)
            continue
        outcome = f"error: {run.error}" if run.error else "ok"
        if run.not_modified:
            outcome += " (not modified)"
        console.print(
            f"{name} ({kind}): {run.finished_at:%Y-%m-%d %H:%M} UTC, fetched {run.fetched}, "
            f"new {run.new}, updated {run.updated}, skipped {run.skipped}; {outcome}",
            highlight=False,
        )


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="One interest line, as a subscriber types it.")],
    from_: Annotated[
        Path | None,
        typer.Option(
            "--from", exists=True, dir_okay=False, help="Search this JSONL file, not the database."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per match.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many matches.")] = 20,
) -> None:
    """Evaluate one interest line against the stored papers (or a file) and print the matches."""
    from digest.search import file_papers, search, stored_papers

    if from_ is not None:
        papers, problems = file_papers(from_)
        for problem in problems:
            err.print(f"[yellow]skipped[/] {problem}", highlight=False)
    else:
        with common.engine() as engine, engine.connect() as conn:
            papers = stored_papers(conn)
    with common.refusing(InterestError):
        found = search(papers, query)
    for item in found[:limit]:
        if as_json:
            record = {"id": item.paper.id, "title": item.paper.title}
            record |= {"score": round(item.score, 4), "matched": list(item.matched)}
            record["found"] = {term: list(forms) for term, forms in item.forms().items()}
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            console.print(
                f"{item.score:7.3f}  {escape(f'[{item.paper.id}] {item.paper.title}')}  "
                f"[dim]({escape(', '.join(item.matched))})[/]",
                highlight=False,
            )
    if not as_json:
        shown = min(limit, len(found))
        console.print(f"{len(found)} of {len(papers)} paper(s) match; {shown} shown")


@app.command()
def explain(
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    paper_id: Annotated[int, typer.Argument(help="The paper's id in the database.")],
) -> None:
    """Show which of a subscriber's interest lines match a paper, and why."""
    from digest.search import explain as explain_paper

    refused = common.refusing(LookupError, SubscriberError, code=common.FAILED)
    with refused, common.engine() as engine:
        paper, verdicts = explain_paper(engine, email, paper_id)
    console.print(f"[{paper.id}] {paper.title}", highlight=False, markup=False)
    for verdict in verdicts:
        if verdict.matches:
            why = ", ".join(verdict.matched)
            line = f"  match  {verdict.line}  score {verdict.score:.3f}: {why}"
            console.print(line, highlight=False, markup=False)
        else:
            missing = ", ".join(verdict.missing) or "an excluded term is present"
            line = f"  no     {verdict.line}  missing: {missing}"
            console.print(line, highlight=False, markup=False)
    if not any(v.matches for v in verdicts):
        console.print("no interest line matches this paper")
