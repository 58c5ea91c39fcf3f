"""Time: `utcnow`, and `Clock`, the zero-argument callable every component takes instead of it.

Planning, sending, the web app and the scheduler read the time through a `Clock`, so tests
pass a clock they move by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
