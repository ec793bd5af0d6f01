"""Live mode against the fake Bybit (real pybit, REST and the private stream): restarts,
with a position open, an entry filled or a position closed while the bot was down, or a
position on Bybit the bot never opened. Nothing is sent twice.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.integration.live_support import (
    CREATE,
    StartLive,
    open_sol,
    place_directly,
    reconciled,
    record_pending_entry,
    start_live,
)
from tests.integration.support import append_signal
from trader.clock import ManualClock
from trader.events import PositionClosed, PositionOpened
from trader.models import CloseReason
from trader.orders import entry_link_id
from trader.ports import OrderStatus

__all__ = ["start_live"]  # fixtures


async def test_restart_with_a_position_open_adopts_it_without_a_new_order(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    await runtime.stop()
    before = live_bybit.position("SOLUSDT")
    assert before is not None
    protection = (before.stop_loss, before.take_profit)

    runtime, events = await start_live()
    assert [p.signal_id for p in runtime.engine.open_positions()] == ["s1"]
    assert len(live_bybit.requests_to(CREATE)) == 1  # the entry, never again
    assert live_bybit.requests_to("/v5/position/trading-stop") == []
    after = live_bybit.position("SOLUSDT")
    assert after is not None
    assert (after.stop_loss, after.take_profit) == protection
    assert reconciled(events) == []  # the database and Bybit agree
    # Re-appending the same row does nothing either.
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s1")
    await live_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.TAKE_PROFIT
    assert closed.trade.entry_price == opened.position.entry_price
    assert len(live_bybit.requests_to(CREATE)) == 1


async def test_an_entry_filled_while_the_bot_was_down_is_recovered_by_its_link_id(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """The crash came after the order was sent and before its fill was stored: the order
    record says pending, Bybit has the position. Nothing is sent again."""
    runtime, events = await start_live()
    await runtime.engine.start_trading()
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await runtime.stop()
    # The "crash", as the database and Bybit are left by it: the engine recorded the order
    # as pending and sent it; Bybit filled it; the fill never reached the database.
    link = entry_link_id("crash-1")
    await record_pending_entry(workdir, live_bybit, clock, "crash-1")
    await asyncio.to_thread(place_directly, live_bybit, link)

    runtime, events = await start_live()
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    assert opened.position.signal_id == "crash-1"
    venue = live_bybit.position("SOLUSDT")
    assert venue is not None
    assert opened.position.stop_loss == venue.stop_loss
    assert opened.position.take_profit == venue.take_profit
    findings = reconciled(events)
    assert len(findings) == 1
    assert "its entry was filled while the bot was not watching" in findings[0]
    assert "not tracked" not in findings[0]  # no plan in this strategy
    assert len(live_bybit.requests_to(CREATE)) == 0  # the bot itself sent nothing
    stored = await runtime.repo.get_order(link)
    assert stored is not None
    assert stored.status is OrderStatus.FILLED
    signal = await runtime.repo.get_signal("crash-1")
    assert signal is not None
    assert signal.outcome == "opened"


async def test_a_position_that_closed_while_the_bot_was_down_is_settled_with_bybits_pnl(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    await runtime.stop()
    await live_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
    assert live_bybit.position("SOLUSDT") is None

    runtime, events = await start_live()
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.TAKE_PROFIT
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    findings = reconciled(events)
    assert len(findings) == 1
    assert "closed on Bybit (TP)" in findings[0]
    assert runtime.engine.open_positions() == []


async def test_an_unknown_position_on_bybit_is_adopted_and_reported(
    start_live: StartLive, live_bybit: FakeBybit
) -> None:
    await live_bybit.open_position("BTCUSDT", "Sell", "0.01", "60000", leverage="5")
    runtime, events = await start_live()
    [position] = runtime.engine.open_positions()
    assert (position.symbol, position.qty, position.side.value) == (
        "BTCUSDT",
        Decimal("0.01"),
        "Sell",
    )
    findings = reconciled(events)
    assert len(findings) == 1
    assert "not opened by the bot: adopted" in findings[0]
    assert "NO stop-loss" in findings[0]
    # It is tracked like any other: closing it from the bot works.
    trade = await runtime.engine.close("BTCUSDT")
    assert trade is not None
    assert live_bybit.position("BTCUSDT") is None


# --- helpers -------------------------------------------------------------------------------------
