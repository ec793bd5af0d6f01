"""Races inside the engine: an entry in flight when trading stops, a close that loses to an
SL trigger. The venue is the paper exchange over the fake Bybit, behind a gate that holds a
call until the test lets it go (a fake of the ``Exchange`` port, not a patch of the engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from storage.repositories import SqliteRepositories
from tests.fakes.bybit import FakeBybit
from trader.clock import ManualClock
from trader.engine import Engine
from trader.events import Event, PositionClosed, PositionOpened, SignalSkipped
from trader.exchange.base import ExchangeEvent, Listener, PositionExited
from trader.exchange.market import BybitMarketData
from trader.exchange.paper import PaperExchange
from trader.models import CloseReason, ExitOrder, Fill, Signal
from trader.orders import entry_link_id
from trader.strategy import Strategy


class GatedExchange(PaperExchange):
    """The paper venue, with gates the test opens: ``set_leverage`` and ``close``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.leverage_gate = asyncio.Event()
        self.leverage_reached = asyncio.Event()
        self.close_gate = asyncio.Event()
        self.close_gate.set()
        self.close_reached = asyncio.Event()
        self.exited = asyncio.Event()

    async def start(self, listener: Listener) -> None:
        def observe(event: ExchangeEvent) -> None:
            listener(event)
            if isinstance(event, PositionExited):
                self.exited.set()

        await super().start(observe)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        self.leverage_reached.set()
        await self.leverage_gate.wait()
        await super().set_leverage(symbol, leverage)

    async def close(self, order: ExitOrder) -> Fill:
        self.close_reached.set()
        await self.close_gate.wait()
        return await super().close(order)


@pytest.fixture
async def engine(
    tmp_path: Path, fake_bybit: FakeBybit
) -> AsyncIterator[tuple[Engine, GatedExchange, list[Event]]]:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    repo = await SqliteRepositories.open(tmp_path / "paper.db")
    market = BybitMarketData(fake_bybit.url, fake_bybit.ws_public_url)
    exchange = GatedExchange(market, fee_rate=Decimal("0.00055"), wallet=Decimal(1000), clock=clock)
    strategy = Strategy(leverage=50, sl_pct=Decimal(40), tp_pct=Decimal(75))
    eng = Engine(strategy=strategy, exchange=exchange, repo=repo, clock=clock)
    events: list[Event] = []

    async def record(event: Event) -> None:
        events.append(event)

    eng.bus.subscribe(record)
    await eng.start()
    await eng.start_trading()
    yield eng, exchange, events
    exchange.leverage_gate.set()
    exchange.close_gate.set()
    await eng.stop()
    await repo.close()


def sol_signal(clock_now: datetime, signal_id: str = "s1") -> Signal:
    return Signal(
        id=signal_id,
        timestamp=clock_now,
        symbol="SOLUSDT",
        verdict="BUY",
        confidence=Decimal("0.9"),
        ttl_minutes=15,
    )


async def test_an_entry_in_flight_is_not_sent_once_trading_is_stopped(
    engine: tuple[Engine, GatedExchange, list[Event]],
) -> None:
    eng, exchange, events = engine
    await eng.handle_record(sol_signal(eng.clock.now()))
    async with asyncio.timeout(5):
        await exchange.leverage_reached.wait()
    await eng.stop_trading()  # while the entry waits on the venue
    exchange.leverage_gate.set()
    await eng.wait_idle()
    assert not eng.open_positions()
    assert [e.outcome for e in events if isinstance(e, SignalSkipped)] == [
        "rejected:trading_disabled"
    ]
    assert await eng.repo.get_order(entry_link_id("s1")) is None  # never sent
    stored = await eng.repo.get_signal("s1")
    assert stored is not None
    assert stored.outcome == "rejected:trading_disabled"


async def test_a_manual_close_that_loses_to_the_stop_loss_is_not_an_error(
    engine: tuple[Engine, GatedExchange, list[Event]], fake_bybit: FakeBybit
) -> None:
    eng, exchange, events = engine
    exchange.leverage_gate.set()
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await eng.handle_record(sol_signal(eng.clock.now()))
    await eng.wait_idle()
    assert eng.open_positions()

    exchange.close_gate.clear()
    close = asyncio.create_task(eng.close("SOLUSDT"))
    async with asyncio.timeout(5):
        await exchange.close_reached.wait()
    # The stop triggers on the venue while /close is still on its way.
    await fake_bybit.set_ticker("SOLUSDT", last="185.00", bid="184.99", ask="185.01")
    async with asyncio.timeout(5):
        await exchange.exited.wait()
    exchange.close_gate.set()
    async with asyncio.timeout(5):
        assert await close is None
    await eng.wait_idle()
    closes = [e.trade for e in events if isinstance(e, PositionClosed)]
    assert [t.reason for t in closes] == [CloseReason.STOP_LOSS]
    assert not [e for e in events if type(e).__name__ == "OrderFailed"]
    assert any(isinstance(e, PositionOpened) for e in events)
    assert len(await eng.repo.all_trades()) == 1


async def test_two_rows_for_one_symbol_at_once_across_midnight_open_one_position(
    engine: tuple[Engine, GatedExchange, list[Event]], fake_bybit: FakeBybit
) -> None:
    """The day's PnL is read anew after UTC midnight (an await): a second row for the same
    symbol handed in meanwhile (the backlog and the follower both hand rows in) must not pass
    on the strength of the screen it passed before that await."""
    eng, exchange, events = engine
    exchange.leverage_gate.set()
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    clock = eng.clock
    assert isinstance(clock, ManualClock)
    clock.set(clock.now().replace(hour=23, minute=59, second=59) + timedelta(seconds=2))
    now = clock.now()
    await asyncio.gather(
        eng.handle_record(sol_signal(now, "a")), eng.handle_record(sol_signal(now, "b"))
    )
    await eng.wait_idle()
    assert len(eng.open_positions()) == 1
    orders = [await eng.repo.get_order(entry_link_id(i)) for i in ("a", "b")]
    assert len([o for o in orders if o is not None]) == 1  # one order sent
    skipped = [e.outcome for e in events if isinstance(e, SignalSkipped)]
    assert skipped == ["filtered:already_open"]
