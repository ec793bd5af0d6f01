"""Time, injected: the engine asks a ``Clock`` instead of calling ``datetime.now``.

Tests use ``ManualClock`` to move time (TTL expiry, the UTC day, confirmation timeouts).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)


def utc_day_start(when: datetime) -> datetime:
    """Midnight UTC of the day ``when`` falls in: "today" for the daily loss limit."""
    when = when.astimezone(UTC)
    return when.replace(hour=0, minute=0, second=0, microsecond=0)
