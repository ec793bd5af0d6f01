"""The public market data adapter's ticker stream, with the real pybit client against a
loopback fake Bybit: the snapshot and deltas in order, subscriptions, listener errors,
rebuilding a silent or refused stream, and no pybit thread left after stop.
"""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest

from tests.fakes.bybit import FakeBybit
from tests.integration.market_support import MarketFactory, market, started
from trader.errors import ExchangeError
from trader.models import Ticker

pytestmark = pytest.mark.timeout(10)
__all__ = ["market"]  # fixtures


async def test_watch_streams_the_snapshot_then_deltas_in_order(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    adapter, recorder = await started(market)

    await adapter.watch("SOLUSDT")
    snapshot = await recorder.next()
    for last, bid, ask in (
        ("151.250", "151.240", "151.260"),
        ("150.990", "150.980", "151.000"),
        ("152.000", "151.990", "152.010"),
    ):
        await fake_bybit.set_ticker("SOLUSDT", last, bid=bid, ask=ask)
    deltas = [await recorder.next() for _ in range(3)]

    assert (snapshot.symbol, snapshot.last) == ("SOLUSDT", Decimal("150"))
    assert (snapshot.bid, snapshot.ask) == (Decimal("149.99"), Decimal("150.01"))
    assert [(t.last, t.bid, t.ask) for t in deltas] == [
        (Decimal("151.25"), Decimal("151.24"), Decimal("151.26")),
        (Decimal("150.99"), Decimal("150.98"), Decimal("151.00")),
        (Decimal("152.00"), Decimal("151.99"), Decimal("152.01")),
    ]


async def test_watch_is_idempotent(market: MarketFactory, fake_bybit: FakeBybit) -> None:
    adapter, recorder = await started(market)

    await adapter.watch("BTCUSDT")
    await adapter.watch("BTCUSDT")
    await recorder.next()

    subscribes = [m.message for m in fake_bybit.ws_messages if m.message.get("op") == "subscribe"]
    assert [s["args"] for s in subscribes] == [["tickers.BTCUSDT"]]


async def test_watch_of_an_unknown_symbol_raises_and_spares_the_stream(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    adapter, recorder = await started(market)

    with pytest.raises(ExchangeError):
        await adapter.watch("NOPEUSDT")
    await adapter.watch("ADAUSDT")
    await recorder.next()
    await fake_bybit.set_ticker("ADAUSDT", "0.4512")

    assert (await recorder.next()).last == Decimal("0.4512")
    assert fake_bybit.public_connections == 1
    assert not any("NOPEUSDT" in str(m.message) for m in fake_bybit.ws_messages)


async def test_listener_errors_do_not_stop_the_stream(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    received: asyncio.Queue[Ticker] = asyncio.Queue()

    def fragile(ticker: Ticker) -> None:
        received.put_nowait(ticker)
        raise RuntimeError("listener bug")

    adapter = market()
    await adapter.start(fragile)
    await adapter.watch("BNBUSDT")
    await asyncio.wait_for(received.get(), 2.0)
    await fake_bybit.set_ticker("BNBUSDT", "581.30")

    assert (await asyncio.wait_for(received.get(), 2.0)).last == Decimal("581.3")


async def test_wait_streamed_returns_once_the_stream_carries_the_symbols(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    adapter, _ = await started(market, stale_after=30.0)
    await adapter.watch("BTCUSDT")
    await adapter.watch("ETHUSDT")

    assert await adapter.wait_streamed(["BTCUSDT", "ETHUSDT"], timeout=3.0)
    fake_bybit.pause_public_pushes()
    await adapter.watch("XRPUSDT")  # subscribed, its snapshot held back
    assert not await adapter.wait_streamed(["BTCUSDT", "XRPUSDT"], timeout=0.2)


async def test_stream_that_cannot_connect_at_start_is_retried(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    fake_bybit.refuse_public_streams = True
    adapter, recorder = await started(market, stale_after=30.0)
    await adapter.watch("DOGEUSDT")
    assert (await adapter.ticker("DOGEUSDT")).last == Decimal("0.15")  # REST meanwhile

    fake_bybit.refuse_public_streams = False
    await fake_bybit.wait_for_subscription("tickers.DOGEUSDT", timeout=3.0)
    await fake_bybit.set_ticker("DOGEUSDT", "0.15321")

    assert (await recorder.until(lambda t: t.last == Decimal("0.15321"))).symbol == "DOGEUSDT"


def _pybit_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    # Threads started since ``before``, except the loop's to_thread workers ("asyncio_N"),
    # which belong to the loop and end with it.
    return [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not t.name.startswith("asyncio_")
    ]


async def test_stop_leaves_no_pybit_threads(market: MarketFactory) -> None:
    before = set(threading.enumerate())
    adapter, recorder = await started(market)
    await adapter.watch("BTCUSDT")
    await recorder.next()
    assert _pybit_threads(before), "pybit's socket thread should be running"

    await adapter.stop()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    for thread in _pybit_threads(before):
        await asyncio.to_thread(thread.join, max(0.0, deadline - loop.time()))
    left = _pybit_threads(before)
    assert not left, f"threads still running after stop(): {[t.name for t in left]}"
