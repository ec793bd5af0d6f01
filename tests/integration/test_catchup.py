"""Catching up with a large signal log at start-up without losing a signal: the rows already in
the log are recorded in bulk in the background (stale ones with their outcome, never traded,
no event each), while a row appended meanwhile is traded at once; every row is recorded exactly
once even across a restart in the middle of the backlog; the follower's offset is written after
the order, and a new symbol's ticker stream is subscribed after its order too.

Real parts: the runtime as ``python -m bot`` wires it, SQLite, the file follower, and pybit
against the loopback fake Bybit. The backlog is held at a gate where a test needs it to be
under way: no timing is relied on.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import trader.signal_file as signal_file
from storage.repositories import SqliteRepositories
from tests.fakes.bybit import FakeBybit
from tests.integration.support import (
    LIVE_KEY,
    LIVE_SECRET,
    Events,
    append_signal,
    fmt,
    settings_for,
)
from trader.clock import ManualClock
from trader.engine import TRADING_ENABLED_KEY
from trader.events import PositionOpened, SignalSkipped
from trader.models import InvalidSignal, Signal
from trader.runtime import Runtime, build_runtime
from trader.signal_feed import FOLLOWER_OFFSET_KEY

pytestmark = pytest.mark.timeout(30)

BACKLOG = 6000  # rows: about three chunks of the backlog reader
CREATE = "/v5/order/create"


class Gate:
    """Holds the backlog after ``passing`` of its batches, until opened."""

    def __init__(self, passing: int) -> None:
        self.passing = passing
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    def hold(self, runtime: Runtime) -> None:
        record = runtime.engine.record_backlog

        async def gated(records: Sequence[Signal | InvalidSignal]) -> Any:
            if self.passing == 0:
                self.reached.set()
                await self.opened.wait()
            self.passing -= 1
            return await record(records)

        runtime.engine.record_backlog = gated  # type: ignore[method-assign]


def write_backlog(path: Path, clock: ManualClock, rows: int = BACKLOG) -> None:
    """``rows`` stale rows, ~800 a day, the newest an hour old."""
    newest = clock.now() - timedelta(hours=1)
    with path.open("a") as handle:
        for i in range(rows):
            at = fmt(newest - timedelta(seconds=108) * (rows - 1 - i))
            handle.write(f"{at},SOLUSDT,,BUY,0.9,,,,100,,,,,,,,15,,,old-{i:05d}\n")


class Writes:
    """Every setting a runtime writes, in order, with what the order's path did in between."""

    def __init__(self, runtime: Runtime) -> None:
        self.calls: list[tuple[str, str]] = []
        self._changed = asyncio.Condition()
        set_setting, open_order = runtime.repo.set_setting, runtime.engine.exchange.open

        async def recorded_setting(key: str, value: str, **kwargs: Any) -> None:
            await set_setting(key, value, **kwargs)
            await self._note(key, value)

        async def recorded_open(*args: Any, **kwargs: Any) -> Any:
            await self._note("order sent", "")
            return await open_order(*args, **kwargs)

        runtime.repo.set_setting = recorded_setting  # type: ignore[method-assign]
        runtime.engine.exchange.open = recorded_open  # type: ignore[method-assign]

    async def _note(self, key: str, value: str) -> None:
        async with self._changed:
            self.calls.append((key, value))
            self._changed.notify_all()

    def written(self) -> list[str]:
        return [key for key, _ in self.calls]

    def offsets(self) -> list[int]:
        return [int(json.loads(v)["offset"]) for k, v in self.calls if k == FOLLOWER_OFFSET_KEY]

    async def wait(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5), self._changed:
            await self._changed.wait_for(condition)


RuntimeFactory = Callable[..., Awaitable[tuple[Runtime, Events, Writes]]]


@pytest.fixture
async def runtimes(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RuntimeFactory]:
    """Starts paper runtimes on one data directory, trading on; each is stopped at the end."""
    monkeypatch.setattr(signal_file, "BACKLOG_CHUNK", 1 << 16)  # ~1,000 of these rows
    running: list[Runtime] = []

    async def start(
        gate: Gate | None = None, **overrides: object
    ) -> tuple[Runtime, Events, Writes]:
        runtime = await build_runtime(settings_for(workdir, fake_bybit, **overrides), clock=clock)
        # Switched on at an earlier start: the backlog's fresh rows are traded at once.
        await runtime.repo.set_setting(TRADING_ENABLED_KEY, "1")
        events = Events()
        runtime.engine.bus.subscribe(events)
        if gate is not None:
            gate.hold(runtime)
        writes = Writes(runtime)
        running.append(runtime)
        await runtime.start()
        return runtime, events, writes

    yield start
    for runtime in running:
        if runtime.engine._started:
            await runtime.stop()


async def count(repo: SqliteRepositories, sql: str) -> int:
    async with repo.database.read() as conn, conn.execute(sql) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def opened_symbols(events: Events) -> list[str]:
    return [e.position.symbol for e in events.seen if isinstance(e, PositionOpened)]


async def test_a_signal_appended_during_catch_up_is_traded_and_the_backlog_only_recorded(
    workdir: Path, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    log = workdir / "signals_log.csv"
    write_backlog(log, clock)
    # Written just before the start: in the backlog, young enough to trade.
    append_signal(log, clock.now(), "BTCUSDT", "BUY", signal_id="just-before")
    gate = Gate(passing=1)  # the tail (the youngest rows) passes, then the backlog waits

    runtime, events, _ = await runtimes(gate)
    async with asyncio.timeout(5):
        await gate.reached.wait()
    append_signal(log, clock.now(), "ETHUSDT", "BUY", signal_id="fresh")
    await events.wait(lambda: sorted(opened_symbols(events)) == ["BTCUSDT", "ETHUSDT"])

    assert not runtime.feed.backlog_recorded.is_set()  # traded while the backlog waits
    gate.opened.set()
    async with asyncio.timeout(10):
        await runtime.feed.backlog_recorded.wait()
    repo = runtime.repo
    assert await count(repo, "SELECT COUNT(*) FROM signals") == BACKLOG + 2
    stale = "SELECT COUNT(*) FROM signals WHERE id LIKE 'old-%' AND outcome = 'filtered:stale'"
    assert await count(repo, stale) == BACKLOG
    assert await count(repo, "SELECT COUNT(*) FROM orders") == 2
    assert not [e for e in events.seen if isinstance(e, SignalSkipped)]  # no event per row


async def test_every_backlog_row_is_recorded_once_across_a_restart_in_its_middle(
    workdir: Path, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    log = workdir / "signals_log.csv"
    write_backlog(log, clock)
    gate = Gate(passing=2)  # the tail and the first chunk, then the backlog waits
    first, events, _ = await runtimes(gate)
    async with asyncio.timeout(5):
        await gate.reached.wait()
    append_signal(log, clock.now(), "ETHUSDT", "BUY", signal_id="fresh")
    await events.wait(lambda: opened_symbols(events) == ["ETHUSDT"])
    await first.engine.wait_idle()
    recorded = await count(first.repo, "SELECT COUNT(*) FROM signals")
    assert 0 < recorded < BACKLOG  # stopped with the backlog half done
    await first.stop()

    second, events, writes = await runtimes()
    async with asyncio.timeout(10):
        await second.feed.backlog_recorded.wait()
    repo = second.repo
    assert await count(repo, "SELECT COUNT(*) FROM signals") == BACKLOG + 1
    stale = "SELECT COUNT(*) FROM signals WHERE outcome = 'filtered:stale'"
    assert await count(repo, stale) == BACKLOG
    assert await count(repo, "SELECT COUNT(*) FROM orders") == 1  # not traded a second time
    fresh = await repo.get_signal("fresh")
    assert fresh is not None
    assert fresh.outcome == "opened"
    # Caught up: the offset stored comes to the end of the log.
    end = log.stat().st_size
    await writes.wait(lambda: end in writes.offsets())


async def test_the_followers_offset_is_written_after_the_order_is_sent(
    workdir: Path, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    _, events, writes = await runtimes()
    await writes.wait(lambda: FOLLOWER_OFFSET_KEY in writes.written())  # the header, read
    mark = len(writes.calls)

    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s1")
    await events.wait(lambda: opened_symbols(events) == ["SOLUSDT"])
    await writes.wait(lambda: FOLLOWER_OFFSET_KEY in writes.written()[mark:])

    keys = writes.written()[mark:]
    assert keys.index("order sent") < keys.index(FOLLOWER_OFFSET_KEY)


async def test_a_new_symbols_ticker_stream_is_subscribed_after_its_order(
    workdir: Path, live_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    runtime, events, _ = await runtimes(
        trading_mode="live", bybit_api_key=LIVE_KEY, bybit_api_secret=LIVE_SECRET
    )
    live_bybit.set_rest_delay(0.1)  # the order's answer comes 100 ms after it arrives
    topic = "tickers.XRPUSDT"

    def subscribed() -> bool:
        return any(topic in json.dumps(m.message) for m in live_bybit.ws_messages)

    append_signal(workdir / "signals_log.csv", clock.now(), "XRPUSDT", "BUY", signal_id="x1")
    await live_bybit.wait_until(lambda: bool(live_bybit.requests_to(CREATE)), timeout=5)
    assert not subscribed()  # nothing but what the order needs came before it
    await events.wait(lambda: opened_symbols(events) == ["XRPUSDT"])
    await live_bybit.wait_for_subscription(topic, timeout=5)
    assert runtime.engine.open_positions()


async def test_a_row_read_again_is_acted_on_once_whether_its_entry_is_under_way_or_done(
    clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    runtime, events, _ = await runtimes()
    engine = runtime.engine
    signal = Signal("twice", clock.now(), "SOLUSDT", "BUY", Decimal("0.9"), ttl_minutes=15)

    await engine.handle_record(signal)
    await engine.handle_record(signal)  # while its entry is under way
    await engine.wait_idle()
    assert opened_symbols(events) == ["SOLUSDT"]
    await engine.close("SOLUSDT")
    await engine.handle_record(signal)  # after: the symbol is free, the signal known
    await engine.wait_idle()

    assert opened_symbols(events) == ["SOLUSDT"]
    assert not [e for e in events.seen if isinstance(e, SignalSkipped)]
    entries = "SELECT COUNT(*) FROM orders WHERE signal_id = 'twice' AND reduce_only = 0"
    assert await count(runtime.repo, entries) == 1


async def test_a_failure_while_following_starts_over_and_the_row_is_still_traded(
    workdir: Path, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    runtime, events, _ = await runtimes()
    runtime.feed._retry = 0.05  # the pause before starting over
    handle, failed = runtime.engine.handle_record, []

    async def locked_once(record: Signal | InvalidSignal) -> None:
        if not failed:
            failed.append(record.id)
            raise sqlite3.OperationalError("database is locked")
        await handle(record)

    runtime.engine.handle_record = locked_once  # type: ignore[method-assign]
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s1")

    await events.wait(lambda: opened_symbols(events) == ["SOLUSDT"])
    assert failed == ["s1"]


async def test_what_start_up_loaded_is_kept_out_of_the_collectors_full_passes(
    runtimes: RuntimeFactory,
) -> None:
    await runtimes()

    # A full collection while a backlog is recorded then skips them: ~1 ms, not ~40 ms.
    assert gc.get_freeze_count() > 0
