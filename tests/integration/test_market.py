"""The public market data adapter, with the real pybit client against a loopback fake Bybit.

Covers parsing, REST errors, the ticker stream, the watchdog's REST cover and reconnects.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.bybit import FakeBybit
from trader.errors import ExchangeError
from trader.exchange.market import BybitMarketData
from trader.models import Ticker

pytestmark = pytest.mark.timeout(10)

TICKERS = "/v5/market/tickers"
INSTRUMENTS = "/v5/market/instruments-info"
FROZEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Recorder:
    """A ticker listener that tests wait on, with deadlines."""

    def __init__(self) -> None:
        self.tickers: list[Ticker] = []
        self._queue: asyncio.Queue[Ticker] = asyncio.Queue()

    def __call__(self, ticker: Ticker) -> None:
        self.tickers.append(ticker)
        self._queue.put_nowait(ticker)

    async def next(self, timeout: float = 2.0) -> Ticker:  # noqa: ASYNC109
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def until(self, condition: Callable[[Ticker], bool], timeout: float = 3.0) -> Ticker:  # noqa: ASYNC109
        """The first ticker from now on that meets ``condition``."""
        async with asyncio.timeout(timeout):
            while True:
                ticker = await self._queue.get()
                if condition(ticker):
                    return ticker


MarketFactory = Callable[..., BybitMarketData]


@pytest.fixture
async def market(fake_bybit: FakeBybit) -> AsyncIterator[MarketFactory]:
    """Builds adapters against the fake (fast watchdog by default) and stops them afterwards."""
    made: list[BybitMarketData] = []

    def make(**options: Any) -> BybitMarketData:
        options.setdefault("watchdog_interval", 0.05)
        adapter = BybitMarketData(fake_bybit.url, fake_bybit.ws_public_url, **options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.stop()


async def started(make: MarketFactory, **options: Any) -> tuple[BybitMarketData, Recorder]:
    adapter = make(**options)
    recorder = Recorder()
    await adapter.start(recorder)
    return adapter, recorder


def _ticker_requests(fake: FakeBybit) -> int:
    return len(fake.requests_to(TICKERS))


async def test_instrument_filters_are_exact_decimals(market: MarketFactory) -> None:
    adapter = market()

    btc = await adapter.instrument("BTCUSDT")
    doge = await adapter.instrument("DOGEUSDT")
    yfi = await adapter.instrument("YFIUSDT")

    assert btc.symbol == "BTCUSDT"
    assert btc.tick_size == Decimal("0.1")
    assert btc.qty_step == Decimal("0.001")
    assert btc.min_order_qty == Decimal("0.001")
    assert btc.min_notional == Decimal("5")
    assert btc.max_order_qty == Decimal("119")  # the market-order cap, not maxOrderQty
    assert btc.max_leverage == Decimal("100")
    assert (doge.tick_size, doge.qty_step) == (Decimal("0.00001"), Decimal("1"))
    assert (yfi.tick_size, yfi.qty_step) == (Decimal("1"), Decimal("0.0001"))
    assert all(
        type(value) is Decimal
        for instrument in (btc, doge, yfi)
        for value in (instrument.tick_size, instrument.qty_step, instrument.min_notional)
    )


async def test_instruments_are_cached(market: MarketFactory, fake_bybit: FakeBybit) -> None:
    adapter = market()

    first = await adapter.instrument("SOLUSDT")
    second = await adapter.instrument("SOLUSDT")

    assert first == second
    assert len(fake_bybit.requests_to(INSTRUMENTS)) == 1
    assert fake_bybit.requests_to(INSTRUMENTS)[0].query == {
        "category": "linear",
        "symbol": "SOLUSDT",
    }


async def test_every_instrument_is_loaded_in_one_paged_call(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    for number in range(1100):  # more than one page of 1,000
        fake_bybit.seed_instrument(f"C{number}USDT", "0.001", "0.1", "0.1", price=None)
    fake_bybit.seed_instrument("OLDUSDT", "0.001", "0.1", "0.1", status="Closed")
    adapter = market()

    await adapter.load_instruments()
    await adapter.load_instruments()  # once loaded, no call
    loads = fake_bybit.requests_to(INSTRUMENTS)
    assert [r.query.get("limit") for r in loads] == ["1000", "1000"]
    assert "cursor" not in loads[0].query
    assert loads[1].query.get("cursor")
    assert "symbol" not in loads[0].query

    assert (await adapter.instrument("C1099USDT")).tick_size == Decimal("0.001")
    assert (await adapter.instrument("BTCUSDT")).qty_step == Decimal("0.001")
    perpetual = await adapter.instrument("BTCPERP")
    assert not perpetual.is_usdt_perpetual
    assert len(fake_bybit.requests_to(INSTRUMENTS)) == 2
    with pytest.raises(ExchangeError, match="not trading"):
        await adapter.instrument("OLDUSDT")  # not loaded: asked for, and refused


async def test_unknown_symbol_is_an_exchange_error(market: MarketFactory) -> None:
    adapter = market()

    with pytest.raises(ExchangeError, match="NOPEUSDT"):
        await adapter.instrument("NOPEUSDT")
    with pytest.raises(ExchangeError, match="Not supported symbols") as refused:
        await adapter.ticker("NOPEUSDT")
    assert refused.value.code == 10001


async def test_instrument_not_trading_is_an_exchange_error(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    fake_bybit.seed_instrument("OLDUSDT", "0.001", "0.1", "0.1", status="Closed")
    adapter = market()

    with pytest.raises(ExchangeError, match="not trading"):
        await adapter.instrument("OLDUSDT")


async def test_unreachable_venue_is_an_exchange_error() -> None:
    adapter = BybitMarketData("http://127.0.0.1:9", "ws://127.0.0.1:9/v5/public/linear")

    with pytest.raises(ExchangeError, match="unreachable"):
        await adapter.ticker("BTCUSDT")


async def test_rest_ticker(market: MarketFactory, fake_bybit: FakeBybit) -> None:
    await fake_bybit.set_ticker("ETHUSDT", "3412.55", bid="3412.54", ask="3412.56")
    adapter = market(now=lambda: FROZEN)

    ticker = await adapter.ticker("ETHUSDT")

    assert ticker == Ticker(
        "ETHUSDT", Decimal("3412.55"), Decimal("3412.54"), Decimal("3412.56"), FROZEN
    )
    assert fake_bybit.requests_to(TICKERS)[-1].query == {
        "category": "linear",
        "symbol": "ETHUSDT",
    }


async def test_empty_side_of_the_book_is_none(market: MarketFactory, fake_bybit: FakeBybit) -> None:
    await fake_bybit.set_ticker("XRPUSDT", "0.6123", bid="", ask="0.6124")
    adapter = market()

    ticker = await adapter.ticker("XRPUSDT")

    assert ticker.bid is None
    assert ticker.ask == Decimal("0.6124")


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


async def test_ticker_uses_the_fresh_stream_value_without_rest(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    adapter, recorder = await started(market, stale_after=30.0)
    await adapter.watch("LINKUSDT")
    streamed = await recorder.next()
    rest_calls = _ticker_requests(fake_bybit)
    # The venue moves on without telling the stream: a REST call would see 15.000.
    fake_bybit.pause_public_pushes()
    await fake_bybit.set_ticker("LINKUSDT", "15.000")

    ticker = await adapter.ticker("LINKUSDT")

    assert ticker == streamed
    assert _ticker_requests(fake_bybit) == rest_calls


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


async def test_a_quiet_symbol_on_a_live_stream_needs_no_rest_ticker(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    # Bybit pushes a ticker only when it changes: on a healthy stream that has sent the
    # symbol's ticker, silence means no change, however long ago (stale_after=0).
    adapter, recorder = await started(market, stale_after=0.0, reconnect_after=30.0)
    await adapter.watch("LINKUSDT")
    assert await adapter.wait_streamed(["LINKUSDT"], timeout=2.0)
    await fake_bybit.set_ticker("LINKUSDT", "14.250")
    await recorder.until(lambda t: t.last == Decimal("14.25"))
    rest_calls = _ticker_requests(fake_bybit)  # the watchdog's, before the snapshot came

    assert (await adapter.ticker("LINKUSDT")).last == Decimal("14.25")
    assert _ticker_requests(fake_bybit) == rest_calls


async def test_a_reconnected_stream_is_not_trusted_until_it_sends_the_symbol_again(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    adapter, recorder = await started(market, stale_after=0.0, reconnect_after=30.0)
    await adapter.watch("SOLUSDT")
    await recorder.next()
    # While the stream is away the price moves; the new stream owes its snapshot (paused).
    fake_bybit.pause_public_pushes()
    await fake_bybit.set_ticker("SOLUSDT", "151.000")
    await fake_bybit.drop_public_streams()
    await fake_bybit.wait_until(
        lambda: "tickers.SOLUSDT" in fake_bybit.subscribed_topics(), timeout=3.0
    )

    assert (await adapter.ticker("SOLUSDT")).last == Decimal("151")  # by REST
    assert _ticker_requests(fake_bybit) >= 1


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


async def test_a_silent_stream_is_rebuilt_and_covered_by_rest_tickers_meanwhile(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    adapter, recorder = await started(market, stale_after=0.3, reconnect_after=0.6)
    await adapter.watch("AVAXUSDT")
    await recorder.next()
    fake_bybit.pause_public_pushes()

    await fake_bybit.set_ticker("AVAXUSDT", "29.125", bid="29.124", ask="29.126")
    covered = await recorder.until(lambda t: t.last == Decimal("29.125"))

    assert (covered.bid, covered.ask) == (Decimal("29.124"), Decimal("29.126"))
    assert _ticker_requests(fake_bybit) >= 1
    assert (await adapter.ticker("AVAXUSDT")).last == Decimal("29.125")


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "connection-lost"])
async def test_dropped_stream_reconnects_and_resumes(
    market: MarketFactory, fake_bybit: FakeBybit, abrupt: bool
) -> None:
    # stale_after is long, so the price below can only arrive by the (new) stream.
    adapter, recorder = await started(market, stale_after=30.0)
    await adapter.watch("HYPEUSDT")
    await adapter.watch("TRXUSDT")
    await recorder.next()
    await recorder.next()

    await fake_bybit.drop_public_streams(abrupt=abrupt)
    await fake_bybit.wait_until(
        lambda: (
            fake_bybit.public_connections == 2
            and {"tickers.HYPEUSDT", "tickers.TRXUSDT"} <= fake_bybit.subscribed_topics()
        ),
        timeout=3.0,
    )
    await fake_bybit.set_ticker("HYPEUSDT", "31.500", bid="31.499", ask="31.501")
    resumed = await recorder.until(lambda t: t.last == Decimal("31.5"))

    assert (resumed.bid, resumed.ask) == (Decimal("31.499"), Decimal("31.501"))
    assert _ticker_requests(fake_bybit) == 0


async def test_silent_but_connected_stream_is_rebuilt(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    adapter, recorder = await started(market, stale_after=0.2, reconnect_after=0.4)
    await adapter.watch("ETHUSDT")
    await recorder.next()

    fake_bybit.pause_public_pushes()
    await fake_bybit.wait_until(lambda: fake_bybit.public_connections >= 2, timeout=3.0)
    fake_bybit.resume_public_pushes()
    await fake_bybit.wait_for_subscription("tickers.ETHUSDT")
    await fake_bybit.set_ticker("ETHUSDT", "3500.00")

    assert (await recorder.until(lambda t: t.last == Decimal("3500"))).symbol == "ETHUSDT"


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
