"""Clock skew against the fake Bybit, with the real pybit client: a local clock behind Bybit's
no longer breaks the private stream's login, and a skew is said with its size, in the log
and in chat."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.live_support import live_exchange
from tests.integration.support import CHAT, LIVE_KEY, LIVE_SECRET, AppFactory
from trader.events import ClockSkewed, Event
from trader.exchange.bybit import BybitExchange
from trader.exchange.venue_gate import VenueGate

AHEAD_MS = 3000  # Bybit's clock ahead of ours: pybit's own login (now + 1 s) is refused
TOLERANCE_MS = 500  # the measurement's error: half a loopback round trip, and scheduling


@pytest.fixture
async def exchange(live_bybit: FakeBybit) -> AsyncIterator[BybitExchange]:
    exchange = live_exchange(live_bybit, gate=VenueGate())
    yield exchange
    await exchange.stop()


async def test_the_private_stream_logs_in_with_bybits_clock_three_seconds_ahead(
    live_bybit: FakeBybit, exchange: BybitExchange
) -> None:
    live_bybit.set_clock_offset(AHEAD_MS)
    told: list[Event] = []
    await exchange.start(told.append)
    await live_bybit.wait_until(lambda: exchange.stream_healthy, timeout=5)
    assert live_bybit.authenticated_private_connections() == 1
    skew = exchange.clock_skew_ms
    assert skew is not None
    assert abs(skew - AHEAD_MS) < TOLERANCE_MS


async def test_a_skew_is_logged_and_told_with_its_size(
    live_bybit: FakeBybit, exchange: BybitExchange, caplog: pytest.LogCaptureFixture
) -> None:
    live_bybit.set_clock_offset(AHEAD_MS)
    told: list[Event] = []
    with caplog.at_level(logging.WARNING, logger="trader.exchange.bybit"):
        await exchange.start(told.append)
    skews = [e for e in told if isinstance(e, ClockSkewed)]
    assert len(skews) == 1
    assert abs(skews[0].offset_ms - AHEAD_MS) < TOLERANCE_MS
    assert skews[0].offset_ms == exchange.clock_skew_ms
    warnings = [r.getMessage() for r in caplog.records if "NTP" in r.getMessage()]
    assert len(warnings) == 1
    assert f"{skews[0].offset_ms:+d} ms" in warnings[0]


async def test_a_clock_in_step_with_bybits_is_not_reported(
    live_bybit: FakeBybit, exchange: BybitExchange
) -> None:
    told: list[Event] = []
    await exchange.start(told.append)
    assert [e for e in told if isinstance(e, ClockSkewed)] == []
    skew = exchange.clock_skew_ms
    assert skew is not None
    assert abs(skew) < TOLERANCE_MS


async def test_the_chat_is_told_the_skew_and_to_synchronise_the_clock(
    apps: AppFactory, live_bybit: FakeBybit, fake_telegram: FakeTelegram
) -> None:
    live_bybit.set_clock_offset(AHEAD_MS)
    await apps(trading_mode="live", bybit_api_key=LIVE_KEY, bybit_api_secret=LIVE_SECRET)
    message = await fake_telegram.wait_for_message(CHAT, "ms behind Bybit's")
    assert "NTP" in (message.plain or "")
