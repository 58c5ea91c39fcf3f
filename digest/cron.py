"""Crontab expressions (weekday 0 = Sunday, as in crontab) as APScheduler triggers."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_RANGE = re.compile(r"(\d)-(\d)")


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
