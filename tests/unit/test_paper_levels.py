"""The paper venue refuses a stop-loss or take-profit level the price has passed, as Bybit
does (10001), instead of taking it and filling it at the next tick."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest

from tests.unit.test_render import T0, position
from trader.clock import ManualClock
from trader.errors import OrderRejected
from trader.exchange.base import MarketData
from trader.exchange.paper import PaperExchange
from trader.models import Ticker


class StillMarket:
    """Market data whose last price stays at ``last``."""

    def __init__(self, last: str) -> None:
        self.last = Decimal(last)

    async def watch(self, symbol: str) -> None:
        return None

    async def ticker(self, symbol: str) -> Ticker:
        return Ticker(symbol, self.last, self.last, self.last, T0)


async def paper_long_at(last: str) -> PaperExchange:
    market: Any = StillMarket(last)
    venue = PaperExchange(
        cast(MarketData, market), fee_rate=Decimal("0.00055"), wallet=Decimal(1000),
        clock=ManualClock(T0),
    )  # fmt: skip
    await venue.adopt([position("SOLUSDT")])  # a long from 190.01, SL 188.49
    return venue


async def test_a_stop_loss_the_price_has_passed_is_refused() -> None:
    venue = await paper_long_at("190.00")
    with pytest.raises(OrderRejected, match="losing side"):
        await venue.set_stop_loss("SOLUSDT", Decimal("190.22"))  # above the last: passed
    await venue.set_stop_loss("SOLUSDT", Decimal("189.00"))  # below: taken


async def test_a_take_profit_the_price_has_passed_is_refused() -> None:
    venue = await paper_long_at("192.00")
    with pytest.raises(OrderRejected, match="winning side"):
        await venue.set_take_profit("SOLUSDT", Decimal("191.50"), Decimal(10))
    await venue.set_take_profit("SOLUSDT", Decimal("193.00"), Decimal(10))
