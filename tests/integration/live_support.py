"""Helpers shared by the live-mode scenario tests (real pybit against the fake Bybit): a
live runtime started on the test's data directory, and a SOLUSDT position opened through it.

Test modules import the ``start_live`` fixture by name (``from tests.integration.live_support
import start_live``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.fakes.bybit import FakeBybit
from tests.integration.support import LIVE_KEY, LIVE_SECRET, Events, append_signal, settings_for
from trader.clock import ManualClock
from trader.events import PositionOpened
from trader.runtime import Runtime, build_runtime

CREATE = "/v5/order/create"

StartLive = Callable[..., Awaitable[tuple[Runtime, Events]]]


@pytest.fixture
async def start_live(
    workdir: Path, live_bybit: FakeBybit, clock: ManualClock
) -> AsyncIterator[StartLive]:
    """Starts a live runtime on the test's data directory, its events collected from the
    very start (start-up reconciliation included); each is stopped at the end."""
    running: list[Runtime] = []

    async def start(**overrides: object) -> tuple[Runtime, Events]:
        settings = settings_for(
            workdir,
            live_bybit,
            trading_mode="live",
            bybit_api_key=LIVE_KEY,
            bybit_api_secret=LIVE_SECRET,
            **overrides,
        )
        runtime = await build_runtime(settings, clock=clock)
        events = Events()
        runtime.engine.bus.subscribe(events)
        running.append(runtime)
        await runtime.start()
        return runtime, events

    yield start
    for runtime in running:
        await runtime.stop()


async def open_sol(
    runtime: Runtime, events: Events, fake: FakeBybit, workdir: Path, clock: ManualClock
) -> PositionOpened:
    await fake.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await runtime.engine.start_trading()
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s1")
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    return opened
