"""/metrics in the Prometheus text format: database gauges and this process's counters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from digest import feedback
from digest.models import DIGESTS, INGEST_RUNS, PAPERS, SUBSCRIBERS
from digest.web.state import WebState


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    """A sample value in full: counts as integers, times to the microsecond (not 1.8e+09)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        shown = _number(value)
        lines.append(f"{name}{{{label}}} {shown}" if label else f"{name} {shown}")
    return lines


def _stored(state: WebState) -> dict[str, Any]:
    """What the database holds, as the metrics count it."""
    with state.engine.connect() as conn:
        return {
            "subscribers": conn.execute(
                sa.select(SUBSCRIBERS.c.status, sa.func.count()).group_by(SUBSCRIBERS.c.status)
            ).all(),
            "digests": conn.execute(
                sa.select(DIGESTS.c.status, sa.func.count()).group_by(DIGESTS.c.status)
            ).all(),
            "papers": conn.execute(sa.select(sa.func.count()).select_from(PAPERS)).scalar_one(),
            "quality": feedback.stats(conn, state.clock()),
            "ingests": conn.execute(
                sa.select(INGEST_RUNS.c.source, sa.func.max(INGEST_RUNS.c.finished_at)).group_by(
                    INGEST_RUNS.c.source
                )
            ).all(),
        }


def metrics_text(state: WebState) -> str:
    """Every metric, one family after another."""
    stored = _stored(state)
    subscribers, digests, papers = stored["subscribers"], stored["digests"], stored["papers"]
    quality, ingests = stored["quality"], stored["ingests"]
    lines = [
        *_family(
            "digest_subscribers",
            "gauge",
            "Subscribers by status.",
            [({"status": str(s)}, n) for s, n in subscribers],
        ),
        *_family(
            "digest_digests",
            "gauge",
            "Digests in the outbox by status.",
            [({"status": str(s)}, n) for s, n in digests],
        ),
        *_family("digest_papers", "gauge", "Papers stored.", [({}, papers)]),
        *_family(
            "digest_source_last_ingest_timestamp_seconds",
            "gauge",
            "When each source was last ingested (Unix time).",
            [({"source": s}, t.timestamp()) for s, t in ingests if t is not None],
        ),
        *_family(
            "digest_feedback_clicks",
            "gauge",
            "Readers' clicks kept, by kind (more: More like this, less: Not for me).",
            [({"kind": k}, n) for k, n in sorted(quality["clicks"].items())],
        ),
        *_family(
            "digest_digests_not_for_me_ratio",
            "gauge",
            'Share of the digests sent in the last 30 days with a "Not for me" click.',
            [({}, quality["share_with_not_for_me"])],
        ),
        *_family(
            "digest_http_requests_total",
            "counter",
            "HTTP requests served by this process.",
            [
                ({"method": m, "route": r, "status": str(c)}, n)
                for (m, r, c), n in sorted(state.requests.items())
            ],
        ),
        *_family(
            "digest_web_emails_total",
            "counter",
            "Emails sent by the web app (confirm, manage, goodbye; *_failed when refused).",
            [({"kind": k}, n) for k, n in sorted(state.emails.items())],
        ),
        *_family(
            "digest_rate_limited_total",
            "counter",
            "Requests refused by a rate limit.",
            [({"limit": k}, n) for k, n in sorted(state.limited.items())],
        ),
    ]
    return "\n".join(lines) + "\n"
