"""Helpers shared by the public market data tests (the real pybit client against a loopback
fake Bybit): adapters built against the fake and stopped afterwards (the ``market``
fixture), and a ticker listener to wait on.

Test modules import the ``market`` fixture by name (``from tests.integration.market_support
import market``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.fakes.bybit import FakeBybit
from trader.exchange.market import BybitMarketData
from trader.models import Ticker

TICKERS = "/v5/market/tickers"


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
