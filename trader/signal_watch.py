"""Whether the signal generator is still writing: the newest signal's time, and the chat told
once when the log falls silent for ``signal_silence_minutes`` and once when rows flow again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from trader.events import EventBus, SignalLogResumed, SignalLogSilent
from trader.models import InvalidSignal, Signal
from trader.ports import SignalRepository


class SignalWatch:
    """Fed every row as it is seen; asked now and then whether the log went quiet."""

    def __init__(self, bus: EventBus, *, silence_minutes: int, started: datetime) -> None:
        self._bus = bus
        self._silence = timedelta(minutes=silence_minutes)
        self.last_at: datetime | None = None  # the newest row's own time
        self._heard = started  # when a row last arrived (or we started listening)
        self._silent_since: datetime | None = None

    async def load(self, repo: SignalRepository) -> None:
        """The newest stored signal's time, from before a restart."""
        newest = await repo.recent_signals(1)
        self.last_at = newest[0].timestamp if newest else None

    def written(self, record: Signal | InvalidSignal) -> None:
        """A row is in the log (a backlog's, say); an unparseable one has no time."""
        written_at = record.timestamp if isinstance(record, Signal) else None
        if written_at is not None and (self.last_at is None or written_at > self.last_at):
            self.last_at = written_at

    async def heard(self, record: Signal | InvalidSignal, now: datetime) -> None:
        """A row was appended now: after a silence, chat hears that rows flow again."""
        self.written(record)
        self._heard = now
        if self._silent_since is not None:
            quiet, self._silent_since = now - self._silent_since, None
            await self._bus.publish(SignalLogResumed(quiet_for=quiet, at=now))

    async def check(self, now: datetime) -> None:
        """Once per silence: no row for longer than the limit."""
        if self._silent_since is not None or now - self._heard < self._silence:
            return
        self._silent_since = self._heard
        minutes = int(self._silence.total_seconds() // 60)
        await self._bus.publish(SignalLogSilent(last_at=self.last_at, minutes=minutes, at=now))
