"""The public market data adapter's REST side, with the real pybit client against a
loopback fake Bybit: instruments (exact filters, cached, loaded in one paged call),
tickers, and the errors of an unknown symbol, one not trading, or a venue unreachable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.fakes.bybit import FakeBybit
from tests.integration.market_support import TICKERS, MarketFactory, market
from trader.errors import ExchangeError
from trader.exchange.market import BybitMarketData
from trader.models import Ticker

pytestmark = pytest.mark.timeout(10)
__all__ = ["market"]  # fixtures

INSTRUMENTS = "/v5/market/instruments-info"
FROZEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


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
