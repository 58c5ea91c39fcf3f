"""Run sources: fetch, parse, store, record; one failing source never stops the others."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from digest.config import Settings, SourceConfig
from digest.db import insert_ignore
from digest.models import HTTP_VALIDATORS, INGEST_RUNS
from digest.sources import arxiv, feeds, hf
from digest.sources.batch import Batch, SourceError
from digest.sources.http import FetchError, Http, Timer, Validators
from digest.sources.ingest import IngestReport, store

log = logging.getLogger("digest.sources")
MAX_PROBLEMS = 50


@dataclass
class SourceReport:
    """What one ingest of one source did."""

    source: str
    kind: str
    started_at: datetime
    finished_at: datetime | None = None
    report: IngestReport = field(default_factory=IngestReport)
    not_modified: bool = False
    error: str | None = None

    @property
    def skipped(self) -> int:
        """Entries rejected, each with a reason in report.errors."""
        return len(self.report.errors)

    def line(self, with_error: bool = True) -> str:
        """One log line: the source and its counts, and the error if it failed."""
        r = self.report
        text = (
            f"{self.source}: fetched {r.fetched}, new {r.new}, updated {r.updated}, "
            f"unchanged {r.unchanged}, skipped {self.skipped}"
        )
        if r.warnings:
            text += f", warnings {len(r.warnings)}"
        if self.not_modified:
            text += " (not modified)"
        return f"{text}; error: {self.error}" if self.error and with_error else text


def load_validators(engine: Engine, url: str) -> Validators | None:
    """The ETag / Last-Modified stored for `url`, if any."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(HTTP_VALIDATORS).where(HTTP_VALIDATORS.c.url == url)).first()
    return Validators(row.etag, row.last_modified) if row else None


def save_validators(engine: Engine, url: str, found: Validators, now: datetime) -> None:
    """Remember a response's validators, once its papers are stored."""
    if not (found.etag or found.last_modified):
        return
    values = {"etag": found.etag, "last_modified": found.last_modified, "updated_at": now}
    with engine.begin() as conn:
        conn.execute(insert_ignore(conn, HTTP_VALIDATORS, ["url"]).values(url=url, **values))
        conn.execute(
            sa.update(HTTP_VALIDATORS).where(HTTP_VALIDATORS.c.url == url).values(**values)
        )


def _store(engine: Engine, batch: Batch, result: SourceReport, now: datetime) -> None:
    result.report.fetched += batch.fetched
    result.report.errors += batch.errors
    result.report.warnings += batch.warnings
    store(engine, batch.papers, result.report, now=now)


def _conditional(
    engine: Engine,
    http: Http,
    url: str,
    parse: Callable[[bytes, str], Batch],
    result: SourceReport,
    now: datetime,
) -> None:
    fetched = http.get(url, validators=load_validators(engine, url))
    if fetched.not_modified:
        result.not_modified = True
        return
    _store(engine, parse(fetched.content, url), result, now)
    save_validators(engine, url, fetched.validators, now)


def _days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


def _fetch(
    engine: Engine,
    http: Http,
    settings: Settings,
    config: SourceConfig,
    result: SourceReport,
    now: datetime,
    since: date,
    until: date,
) -> None:
    if config.kind == "arxiv":
        url = arxiv.listing_url(settings, config.categories)
        http.pace(url, settings.arxiv_delay)
        _conditional(engine, http, url, arxiv.parse_listing, result, now)
    elif config.kind == "arxiv-api":
        # Each page is stored as it arrives: a later page failing loses nothing before it.
        for page in arxiv.api_pages(http, settings, config.categories, since, until):
            _store(engine, page, result, now)
    elif config.kind == "hf":
        failed: list[str] = []
        for day in _days(since, until):
            try:
                _conditional(engine, http, hf.daily_url(settings, day), hf.parse_daily, result, now)
            except (FetchError, SourceError) as exc:
                failed.append(str(exc))
        if failed:
            raise SourceError("; ".join(failed))
    else:
        if not config.url:
            raise SourceError("a feed source needs a url")
        _conditional(
            engine,
            http,
            config.url,
            lambda data, origin: feeds.parse_feed(data, origin, config.label()),
            result,
            now,
        )


def ingest_source(
    engine: Engine,
    settings: Settings,
    config: SourceConfig,
    now: datetime,
    *,
    http: Http | None = None,
    since: date | None = None,
    until: date | None = None,
) -> SourceReport:
    """Ingest one source and record the run; errors are caught, reported and recorded."""
    result = SourceReport(config.label(), config.kind, started_at=now)
    until = until or now.date()
    since = since or until - timedelta(days=config.days - 1)
    own = http is None
    client = http or Http(settings)
    try:
        _fetch(engine, client, settings, config, result, now, since, until)
    except (FetchError, SourceError) as exc:
        result.error = str(exc)
    except Exception as exc:  # isolate the source; the message is recorded and logged
        log.exception("%s failed", result.source)
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if own:
            client.close()
    result.finished_at = now
    record(engine, result)
    level = logging.WARNING if result.error else logging.INFO
    log.log(level, "%s", result.line())
    for problem in result.report.warnings:
        log.warning("%s: %s", result.source, problem)
    for problem in result.report.errors:
        log.warning("%s: skipped %s", result.source, problem)
    return result


def record(engine: Engine, result: SourceReport) -> None:
    """Store one run in the ingest history; a database failure is logged, not raised."""
    r = result.report
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(INGEST_RUNS).values(
                    source=result.source,
                    kind=result.kind,
                    started_at=result.started_at,
                    finished_at=result.finished_at or result.started_at,
                    fetched=r.fetched,
                    new=r.new,
                    updated=r.updated,
                    unchanged=r.unchanged,
                    skipped=result.skipped,
                    not_modified=result.not_modified,
                    error=result.error,
                    problems=[*r.warnings, *r.errors][:MAX_PROBLEMS],
                )
            )
    except sa.exc.SQLAlchemyError:
        log.exception("could not record the ingest of %s", result.source)


def ingest_configured(
    engine: Engine,
    settings: Settings,
    now: datetime,
    *,
    timer: Timer | None = None,
    rng: random.Random | None = None,
) -> list[SourceReport]:
    """Ingest every source in settings.sources, each isolated, each recorded."""
    with Http(settings, timer=timer, rng=rng) as http:
        return [ingest_source(engine, settings, c, now, http=http) for c in settings.sources]


def last_runs(engine: Engine) -> list[Any]:
    """The latest recorded run of every source, by source name."""
    latest = sa.select(sa.func.max(INGEST_RUNS.c.id)).group_by(INGEST_RUNS.c.source)
    query = sa.select(INGEST_RUNS).where(INGEST_RUNS.c.id.in_(latest))
    with engine.connect() as conn:
        return list(conn.execute(query.order_by(INGEST_RUNS.c.source)))


def status(engine: Engine, settings: Settings) -> list[tuple[str, str, Any | None]]:
    """(source, kind, its last run or None) for every configured or recorded source."""
    runs = {row.source: row for row in last_runs(engine)}
    listed = [(c.label(), c.kind, runs.pop(c.label(), None)) for c in settings.sources]
    return listed + [(name, row.kind, row) for name, row in sorted(runs.items())]
