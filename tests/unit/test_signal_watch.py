"""The signal log's silence: said once when the generator stops writing, once when it starts
again; the newest signal's time for /status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trader.events import Event, EventBus, SignalLogResumed, SignalLogSilent
from trader.models import InvalidSignal, Signal
from trader.signal_watch import SignalWatch

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def signal(at: datetime) -> Signal:
    return Signal(id=str(at), timestamp=at, symbol="SOLUSDT", verdict="BUY", confidence=Decimal(1))


async def test_a_silence_is_said_once_and_its_end_once() -> None:
    bus, said = EventBus(), list[Event]()

    async def collect(event: Event) -> None:
        said.append(event)

    bus.subscribe(collect)
    watch = SignalWatch(bus, silence_minutes=15, started=T0)
    await watch.heard(signal(T0), T0)
    await watch.check(T0 + 14 * MIN)
    assert said == []
    await watch.check(T0 + 16 * MIN)
    await watch.check(T0 + 40 * MIN)  # still silent: not said again
    assert said == [SignalLogSilent(last_at=T0, minutes=15, at=T0 + 16 * MIN)]
    await watch.heard(signal(T0 + 41 * MIN), T0 + 41 * MIN)
    await watch.heard(signal(T0 + 42 * MIN), T0 + 42 * MIN)
    assert said[1:] == [SignalLogResumed(quiet_for=41 * MIN, at=T0 + 41 * MIN)]
    assert watch.last_at == T0 + 42 * MIN


async def test_the_newest_time_ignores_older_and_unparseable_rows() -> None:
    watch = SignalWatch(EventBus(), silence_minutes=15, started=T0)
    watch.written(signal(T0 + 5 * MIN))
    watch.written(signal(T0))  # a backlog row older than what we have
    watch.written(InvalidSignal(id="bad", reason="bad_timestamp"))
    assert watch.last_at == T0 + 5 * MIN
