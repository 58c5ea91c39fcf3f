"""APScheduler wiring: triggers -> the service's jobs. The database rows are the truth.

Each `digest serve` process has its own in-memory job store (APScheduler 3.x must not
share one); the jobs themselves do nothing unless this process holds the leadership.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import Settings, SourceConfig

_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_RANGE = re.compile(r"(\d)-(\d)")


class Jobs(Protocol):
    """What the scheduler triggers."""

    async def elect(self) -> None:
        """Take or keep the scheduler leadership."""

    async def dispatch(self) -> object:
        """Plan every digest now due and hand them to the senders."""

    async def ingest(self, source: SourceConfig) -> object:
        """Ingest one source."""


def _crontab_weekdays(field: str) -> str:
    # APScheduler 3.x numbers weekdays from Monday = 0; crontab from Sunday = 0.
    parts = []
    for part in field.split(","):
        if m := _RANGE.fullmatch(part):
            first, last = int(m[1]), int(m[2])
            if first > last or last > 7:
                raise ValueError(f"weekday range {part!r} must run from 0 to 7 upwards")
            parts += [_DAYS[day] for day in range(first, last + 1)]
        elif part.isdigit():
            if int(part) > 7:
                raise ValueError(f"weekday {part!r} is not 0-7 (0 and 7 are Sunday)")
            parts.append(_DAYS[int(part)])
        else:
            parts.append(part)
    return ",".join(dict.fromkeys(parts))


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A trigger from a crontab expression (weekday 0 = Sunday); ValueError says what's wrong."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron {expression!r} has {len(fields)} fields; expected 5: "
            "minute hour day-of-month month day-of-week"
        )
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_crontab_weekdays(weekday),
            timezone=zone,
        )
    except ValueError as exc:
        raise ValueError(f"cron {expression!r}: {exc}") from exc


def triggers(settings: Settings) -> list[tuple[str, BaseTrigger, SourceConfig | None]]:
    """(job name, trigger, source or None) of every scheduled job but the election."""
    planned: list[tuple[str, BaseTrigger, SourceConfig | None]] = [
        ("dispatch", IntervalTrigger(seconds=settings.dispatch_seconds, timezone=UTC), None)
    ]
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
            at: datetime | None = now + timedelta(seconds=settings.dispatch_seconds)
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
            scheduler.add_job(**_job(jobs.dispatch), trigger=trigger, id=name, name=name)
        else:
            scheduler.add_job(
                **_job(jobs.ingest, source),
                trigger=trigger,
                id=f"{number}:{name}",
                name=name,
                misfire_grace_time=grace,
            )
    return scheduler
