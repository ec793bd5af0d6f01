"""When the public market data adapter trusts the stream's ticker and when it asks REST,
with the real pybit client against a loopback fake Bybit: a fresh or quiet stream needs
no REST; a reconnected or silent one is covered by REST until it proves itself again.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.bybit import FakeBybit
from tests.integration.market_support import TICKERS, MarketFactory, market, started

pytestmark = pytest.mark.timeout(10)
__all__ = ["market"]  # fixtures


def _ticker_requests(fake: FakeBybit) -> int:
    return len(fake.requests_to(TICKERS))


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
