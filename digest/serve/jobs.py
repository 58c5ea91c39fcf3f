"""APScheduler wiring: triggers -> the service's jobs. The database rows are the truth.

Each `digest serve` process has its own in-memory job store (APScheduler 3.x must not
share one); the jobs themselves do nothing unless this process holds the leadership.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import Settings, SourceConfig
from digest.cron import cron_trigger


class Jobs(Protocol):
    """What the scheduler triggers."""

    async def elect(self) -> None:
        """Take or keep the scheduler leadership."""

    async def dispatch(self) -> object:
        """Plan every digest now due and hand them to the senders."""

    async def ingest(self, source: SourceConfig) -> object:
        """Ingest one source."""

    async def inbox(self) -> object:
        """Read the inbox: bounces and emailed unsubscribe requests."""

    async def purge(self) -> object:
        """Erase the sign-ups never confirmed in time."""


def triggers(settings: Settings) -> list[tuple[str, BaseTrigger, SourceConfig | None]]:
    """(job name, trigger, source or None) of every scheduled job but the election."""
    planned: list[tuple[str, BaseTrigger, SourceConfig | None]] = [
        ("dispatch", IntervalTrigger(seconds=settings.dispatch_seconds, timezone=UTC), None),
        ("purge", IntervalTrigger(hours=1, timezone=UTC), None),
    ]
    if settings.inbox_imap_url.get_secret_value() or settings.inbox_maildir:
        every = IntervalTrigger(minutes=settings.inbox_every_minutes, timezone=UTC)
        planned.append(("inbox", every, None))
    for source in settings.sources:
        expression = source.cron or settings.ingest_cron
        trigger = cron_trigger(expression, settings.ingest_timezone)
        planned.append((f"ingest {source.label()}", trigger, source))
    return planned


def upcoming(settings: Settings, now: datetime) -> list[tuple[str, datetime]]:
    """Each job and the next time it runs after `now`, soonest first."""
    found = []
    for name, trigger, _ in triggers(settings):
        if isinstance(trigger, IntervalTrigger):
            at: datetime | None = now + trigger.interval
        else:
            at = trigger.get_next_fire_time(None, now)
        if at is not None:
            found.append((name, at.astimezone(UTC)))
    return sorted(found, key=lambda item: item[1])


def missed(
    settings: Settings, last_run: Mapping[str, datetime], now: datetime
) -> list[SourceConfig]:
    """Sources whose cron time passed within the catch-up grace with no ingest since.

    The job store lives in memory, so a restart forgets runs it missed; the ingest
    records (`last_run`: source label -> start of its latest run) say what is owed.
    """
    since = now - timedelta(hours=settings.catch_up_hours)
    owed = []
    for _, trigger, source in triggers(settings):
        if source is None:
            continue
        fired = trigger.get_next_fire_time(None, since)
        ran = last_run.get(source.label())
        if fired is not None and fired <= now and (ran is None or ran < fired):
            owed.append(source)
    return owed


def _job(function: Callable[..., Awaitable[object]], *args: Any) -> dict[str, Any]:
    return {"func": function, "args": args, "max_instances": 1, "coalesce": True}


def build_scheduler(settings: Settings, jobs: Jobs, now: datetime) -> AsyncIOScheduler:
    """A scheduler (not started) running the election now and then every few seconds."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    grace = int(settings.catch_up_hours * 3600)
    scheduler.add_job(
        **_job(jobs.elect),
        trigger=IntervalTrigger(seconds=settings.leader_check_seconds, timezone=UTC),
        id="elect",
        name="elect",
        next_run_time=now,
    )
    for number, (name, trigger, source) in enumerate(triggers(settings)):
        if source is None:
            job = {"inbox": jobs.inbox, "purge": jobs.purge}.get(name, jobs.dispatch)
            scheduler.add_job(**_job(job), trigger=trigger, id=name, name=name)
        else:
            scheduler.add_job(
                **_job(jobs.ingest, source),
                trigger=trigger,
                id=f"{number}:{name}",
                name=name,
                misfire_grace_time=grace,
            )
    return scheduler
