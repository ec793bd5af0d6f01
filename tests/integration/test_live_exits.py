"""Live mode against the fake Bybit where real Bybit differs from a simple model of it: market
orders that fill in part, exits Bybit makes itself (liquidation, auto-deleveraging, delivery),
paged lists, a position's open time, and the continuous checks (a push lost on a live
connection, a stop-loss removed by hand).
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.bybit import FakeBybit
from tests.integration.live_support import CREATE, StartLive, open_sol, reconciled, start_live
from trader.clock import ManualClock
from trader.events import PositionClosed, PositionReduced
from trader.models import CloseReason, Side

TRADING_STOP = "/v5/position/trading-stop"

__all__ = ["start_live"]  # fixtures


def ordered_qty(fake: FakeBybit, index: int = 0) -> Decimal:
    return Decimal(json.loads(fake.requests_to(CREATE)[index].body)["qty"])


# --- partial fills -------------------------------------------------------------------------------


async def test_an_entry_that_filled_in_part_books_what_filled(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    live_bybit.partial_fill_next("0.3", symbol="SOLUSDT")
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    assert ordered_qty(live_bybit) > Decimal("0.3")
    assert opened.position.qty == Decimal("0.3")
    assert opened.ordered_qty == ordered_qty(live_bybit)  # the note says what was asked
    on_bybit = live_bybit.position("SOLUSDT")
    assert on_bybit is not None
    assert on_bybit.size == Decimal("0.3")
    assert on_bybit.stop_loss == opened.position.stop_loss  # the SL covers what is held
    status = await runtime.engine.status()
    assert [v.position.qty for v in status.positions] == [Decimal("0.3")]


async def test_a_close_that_filled_in_part_keeps_the_rest_open_and_managed(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    whole = opened.position.qty
    live_bybit.partial_fill_next("0.2", symbol="SOLUSDT", status="PartiallyFilledCanceled")
    part = await runtime.engine.close("SOLUSDT")
    assert part is not None
    assert part.qty == Decimal("0.2")
    reduced = await events.next(PositionReduced)
    assert isinstance(reduced, PositionReduced)
    assert reduced.remaining.qty == whole - Decimal("0.2")
    assert [p.qty for p in runtime.engine.open_positions()] == [whole - Decimal("0.2")]
    on_bybit = live_bybit.position("SOLUSDT")
    assert on_bybit is not None
    assert on_bybit.size == whole - Decimal("0.2")
    assert part.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    assert await runtime.engine.reconcile("a look after the part") == []  # Bybit agrees

    rest = await runtime.engine.close("SOLUSDT")  # the remainder is still managed
    assert rest is not None
    await events.next(PositionClosed)
    assert live_bybit.position("SOLUSDT") is None
    trades = await runtime.repo.all_trades()
    assert sum(t.qty for t in trades) == whole  # what the trades book is what was traded
    assert sum(t.net_pnl for t in trades) == sum(r.closed_pnl for r in live_bybit.closed_pnl)
    assert runtime.engine.open_positions() == []


async def test_the_rest_of_a_ttl_close_that_filled_in_part_is_closed_too(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    live_bybit.partial_fill_next("0.2", symbol="SOLUSDT")
    clock.advance(opened.position.expires_at - clock.now() + timedelta(seconds=1))
    await live_bybit.set_ticker("SOLUSDT", last="190.50", bid="190.49", ask="190.51")
    reduced = await events.next(PositionReduced)
    assert isinstance(reduced, PositionReduced)
    assert reduced.trade.reason is CloseReason.TTL
    closed = await events.next(PositionClosed)  # the remainder: still due, closed next
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.TTL
    assert closed.trade.qty + reduced.trade.qty == opened.position.qty
    assert live_bybit.position("SOLUSDT") is None


# --- exits Bybit makes itself --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_exit", "reason"),
    [
        ("liquidate", CloseReason.LIQUIDATION),
        ("auto_deleverage", CloseReason.ADL),
        ("deliver", CloseReason.DELIVERY),
    ],
)
async def test_an_exit_bybit_made_is_booked_with_its_figures_and_named(
    start_live: StartLive,
    live_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
    make_exit: str,
    reason: CloseReason,
) -> None:
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    await getattr(live_bybit, make_exit)("SOLUSDT")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is reason
    if live_bybit.closed_pnl:
        assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    assert runtime.engine.open_positions() == []


async def test_a_partial_liquidation_shrinks_the_position_and_says_so(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    await live_bybit.liquidate("SOLUSDT", qty="0.1")
    reduced = await events.next(PositionReduced)
    assert isinstance(reduced, PositionReduced)
    assert reduced.trade.reason is CloseReason.LIQUIDATION
    assert reduced.trade.qty == Decimal("0.1")
    assert reduced.remaining.qty == opened.position.qty - Decimal("0.1")
    on_bybit = live_bybit.position("SOLUSDT")
    assert on_bybit is not None
    assert [p.qty for p in runtime.engine.open_positions()] == [on_bybit.size]


# --- paging and open time ------------------------------------------------------------------------


async def test_more_than_a_page_of_positions_is_all_seen_by_reconciliation(
    start_live: StartLive, live_bybit: FakeBybit
) -> None:
    for n in range(25):
        symbol = f"PAGE{n}USDT"
        live_bybit.seed_instrument(symbol, "0.01", "0.1", "0.1", price="10")
        await live_bybit.open_position(symbol, "Buy", "1", "10", stop_loss="9")
    runtime, _ = await start_live()
    assert len(runtime.engine.open_positions()) == 25  # adopted, every page read
    assert await runtime.engine.reconcile("a second look") == []  # none said to be gone


async def test_an_old_close_on_the_symbol_is_not_booked_against_a_newer_position(
    start_live: StartLive, live_bybit: FakeBybit
) -> None:
    # A position closed by hand, then a new one on the same symbol: Bybit's createdTime
    # is the first one's, openTime the new one's.
    await live_bybit.open_position("SOLUSDT", "Buy", "1", "190", stop_loss="180")
    await live_bybit.close_by_hand("SOLUSDT")
    live_bybit.set_clock_offset(2000)  # the new position opens two seconds later
    await live_bybit.open_position("SOLUSDT", "Buy", "2", "191", stop_loss="181")
    runtime, _ = await start_live()
    [adopted] = runtime.engine.open_positions()
    fake_position = live_bybit.position("SOLUSDT")
    assert fake_position is not None
    assert adopted.opened_at.timestamp() * 1000 == fake_position.opened_ms
    await runtime.stop()

    await live_bybit.close_by_hand("SOLUSDT")  # while the bot is down
    runtime, _ = await start_live()
    trades = await runtime.repo.all_trades()
    assert [t.qty for t in trades] == [Decimal(2)]  # the new position's close only


# --- continuous checks ---------------------------------------------------------------------------


async def test_a_push_lost_on_a_live_connection_is_found_by_the_periodic_check(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live(venue_check_seconds=0.3)
    await open_sol(runtime, events, live_bybit, workdir, clock)
    live_bybit.drop_private_pushes()
    await live_bybit.close_by_hand("SOLUSDT")
    closed = await events.next(PositionClosed, timeout=10)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.EXTERNAL
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    assert live_bybit.authenticated_private_connections() == 1  # found without a reconnect


async def test_a_stop_loss_removed_by_hand_is_put_back(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    await live_bybit.remove_stop_loss("SOLUSDT")

    def restored() -> bool:
        position = live_bybit.position("SOLUSDT")
        return position is not None and position.stop_loss == opened.position.stop_loss

    await events.wait(restored)
    [request] = live_bybit.requests_to(TRADING_STOP)
    assert json.loads(request.body)["stopLoss"] == f"{opened.position.stop_loss.normalize():f}"
    await events.wait(lambda: any("put back" in f for f in reconciled(events)))


async def test_a_stop_loss_that_cannot_be_put_back_is_said_loudly_until_fixed(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live(venue_check_seconds=0.3)
    await open_sol(runtime, events, live_bybit, workdir, clock)
    live_bybit.fail_next(TRADING_STOP, ret_code=10001, ret_msg="params error", times=100)
    await live_bybit.remove_stop_loss("SOLUSDT")

    def alarms() -> list[str]:
        return [f for f in reconciled(events) if "NO stop-loss" in f]

    await events.wait(lambda: len(alarms()) >= 3, timeout=10)  # said again at each check
    assert all(f.startswith("🚨") for f in alarms())
    live_bybit.clear_faults()
    await events.wait(lambda: any("put back" in f for f in reconciled(events)), timeout=10)
    position = live_bybit.position("SOLUSDT")
    assert position is not None
    assert position.stop_loss is not None
    assert runtime.engine.open_positions()[0].side is Side.BUY


# --- exits whose pushes were lost ----------------------------------------------------------------


async def test_a_lost_partial_exit_is_booked_before_the_close_that_flattened_the_position(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    live_bybit.drop_private_pushes()  # the auto-deleveraging is never pushed
    await live_bybit.auto_deleverage("SOLUSDT", qty="0.1")
    live_bybit.stop_dropping_private_pushes()
    await live_bybit.set_ticker("SOLUSDT", last="188.40", bid="188.38", ask="188.42")  # its SL
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.STOP_LOSS
    trades = await runtime.repo.all_trades()
    assert [t.reason for t in trades] == [CloseReason.ADL, CloseReason.STOP_LOSS]
    assert sum(t.qty for t in trades) == opened.position.qty
    assert sum(t.net_pnl for t in trades) == sum(r.closed_pnl for r in live_bybit.closed_pnl)


async def test_a_close_trimmed_by_bybit_settles_the_exit_that_took_the_rest(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()  # the periodic check is a minute away
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    live_bybit.drop_private_pushes()
    await live_bybit.auto_deleverage("SOLUSDT", qty="0.1")  # unseen: we still hold it all
    live_bybit.stop_dropping_private_pushes()
    part = await runtime.engine.close("SOLUSDT")  # Bybit trims the order to what is left
    assert part is not None
    assert part.qty == opened.position.qty - Decimal("0.1")
    closed = await events.next(PositionClosed)  # the 0.1 Bybit took is found at once
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.ADL
    assert runtime.engine.open_positions() == []
    trades = await runtime.repo.all_trades()
    assert sum(t.qty for t in trades) == opened.position.qty


async def test_a_missing_stop_loss_past_its_price_closes_the_position_at_market(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live(venue_check_seconds=0.3)
    await open_sol(runtime, events, live_bybit, workdir, clock)
    live_bybit.drop_private_pushes()
    await live_bybit.remove_stop_loss("SOLUSDT")
    live_bybit.stop_dropping_private_pushes()
    await live_bybit.set_ticker("SOLUSDT", last="188.00", bid="187.98", ask="188.02")
    closed = await events.next(PositionClosed, timeout=10)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.STOP_LOSS
    assert live_bybit.requests_to(TRADING_STOP) == []  # no stop put where Bybit refuses it
    assert any("past its stop" in f for f in reconciled(events))
