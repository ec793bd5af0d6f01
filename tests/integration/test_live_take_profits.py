"""Several take-profits and the breakeven move in live mode against the fake Bybit (real
pybit, REST and the private stream): the entry carries its stop-loss only, one partial
take-profit per TP is set through trading-stop after the fill, each partial fill is booked as
its own part with Bybit's figures, the stop-loss moves to breakeven once after TP1, a restart
in between sends neither again and still books the rest, and a refusal is said while the
position keeps its stop-loss.

SOLUSDT: a long fills at the ask, 190.01, qty 26.3 (100 USDT at 50x); TP1 191.53 for 13.1,
TP2 192.86 for 13.2; SL 188.49; breakeven after TP1 at 190.22 (fees of 0.055% each way).
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.integration.live_support import CREATE, StartLive, open_sol, start_live
from tests.integration.support import edit_strategy
from trader.clock import ManualClock
from trader.events import OrderFailed, PositionClosed, PositionReduced
from trader.models import CloseReason, TakeProfitLevel

__all__ = ["start_live"]  # fixtures

TRADING_STOP = "/v5/position/trading-stop"
LEVELS = (
    TakeProfitLevel(Decimal("191.53"), Decimal("13.1")),
    TakeProfitLevel(Decimal("192.86"), Decimal("13.2")),
)
BREAKEVEN = Decimal("190.22")


def with_plan(workdir: Path) -> None:
    edit_strategy(
        workdir,
        take_profits=[{"pct": 40, "size": 50}, {"pct": 75, "size": 50}],
        breakeven_after_tp=1,
    )


def bodies(fake: FakeBybit, path: str) -> list[dict[str, object]]:
    return [json.loads(request.body) for request in fake.requests_to(path)]


async def test_tp1_then_breakeven_then_the_rest_at_the_entry(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    assert opened.position.take_profits is not None
    assert opened.position.take_profits.levels == LEVELS

    [entry] = bodies(live_bybit, CREATE)
    assert "stopLoss" in entry
    assert "takeProfit" not in entry  # no Full TP: the partial ones follow the fill
    paths = [r.path for r in live_bybit.requests if r.path in (CREATE, TRADING_STOP)]
    assert paths == [CREATE, TRADING_STOP, TRADING_STOP]
    assert bodies(live_bybit, TRADING_STOP) == [
        {
            "category": "linear",
            "symbol": "SOLUSDT",
            "tpslMode": "Partial",
            "takeProfit": str(level.price),
            "tpSize": str(level.qty),
            "tpTriggerBy": "LastPrice",
            "tpOrderType": "Market",
            "positionIdx": 0,
        }
        for level in LEVELS
    ]
    assert len(live_bybit.partial_orders("SOLUSDT")) == 2

    mark = len(events.seen)
    await live_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    reduced = await events.next(PositionReduced, after=mark)
    assert isinstance(reduced, PositionReduced)
    part = reduced.trade
    assert (part.reason, part.qty) == (CloseReason.TAKE_PROFIT, Decimal("13.1"))
    assert part.net_pnl == live_bybit.closed_pnl[-1].closed_pnl  # Bybit's figure
    assert reduced.remaining.qty == Decimal("13.2")
    await runtime.engine.wait_idle()  # the move follows the stored part, off its path
    [rest] = runtime.engine.open_positions()
    assert (rest.qty, rest.stop_loss) == (Decimal("13.2"), BREAKEVEN)
    assert rest.take_profits is not None
    assert rest.take_profits.breakeven_moved
    [stored] = await runtime.repo.open_positions()
    assert stored.stop_loss == BREAKEVEN  # stored, for a restart to find
    # The part is known as TP1 by its order's trigger price, whatever its size.
    assert stored.take_profits is not None
    assert stored.take_profits.filled_prices == (LEVELS[0].price,)
    moved = bodies(live_bybit, TRADING_STOP)[2:]
    assert [(b["tpslMode"], b["stopLoss"]) for b in moved] == [("Full", "190.22")]
    on_bybit = live_bybit.position("SOLUSDT")
    assert on_bybit is not None
    assert on_bybit.stop_loss == BREAKEVEN

    mark = len(events.seen)
    await live_bybit.set_ticker("SOLUSDT", "190.21", bid="190.20", ask="190.22")
    closed = await events.next(PositionClosed, after=mark)
    assert isinstance(closed, PositionClosed)
    assert (closed.trade.reason, closed.trade.qty) == (CloseReason.STOP_LOSS, Decimal("13.2"))
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    assert abs(closed.trade.net_pnl) < Decimal("13.2") * Decimal("0.02")  # about flat
    assert runtime.engine.open_positions() == []
    assert len(live_bybit.requests_to(TRADING_STOP)) == 3  # the move was sent once


async def test_tp1_and_tp2(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    mark = len(events.seen)
    await live_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    await events.next(PositionReduced, after=mark)
    mark = len(events.seen)
    await live_bybit.set_ticker("SOLUSDT", "192.90", bid="192.89", ask="192.91")
    closed = await events.next(PositionClosed, after=mark)
    assert isinstance(closed, PositionClosed)
    assert (closed.trade.reason, closed.trade.qty) == (CloseReason.TAKE_PROFIT, Decimal("13.2"))
    second, first = await runtime.engine.recent_trades(2)
    assert [first.qty, second.qty] == [Decimal("13.1"), Decimal("13.2")]
    records = live_bybit.closed_pnl[-2:]
    assert first.net_pnl + second.net_pnl == sum(r.closed_pnl for r in records)
    assert runtime.engine.open_positions() == []
    assert closed.total == first.net_pnl + second.net_pnl  # the trade: its parts' sum
    stats = await runtime.engine.stats()
    assert (stats.trades, stats.wins, stats.net_pnl) == (1, 1, closed.total)


async def test_a_restart_between_tp1_and_the_rest_sends_nothing_again(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    mark = len(events.seen)
    await live_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    await events.next(PositionReduced, after=mark)
    await runtime.stop()

    runtime, events = await start_live()
    [position] = runtime.engine.open_positions()
    assert position.take_profits is not None
    assert position.take_profits.levels == LEVELS
    assert position.take_profits.breakeven_moved
    assert (position.qty, position.stop_loss) == (Decimal("13.2"), BREAKEVEN)
    assert len(live_bybit.requests_to(TRADING_STOP)) == 3  # 2 TPs and the move, not again
    await live_bybit.set_ticker("SOLUSDT", "192.90", bid="192.89", ask="192.91")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert (closed.trade.reason, closed.trade.qty) == (CloseReason.TAKE_PROFIT, Decimal("13.2"))
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    assert len(live_bybit.requests_to(TRADING_STOP)) == 3


async def test_a_take_profit_bybit_refuses_is_said_and_the_position_keeps_its_stop_loss(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    live_bybit.fail_next(TRADING_STOP, ret_code=10001, ret_msg="fake: take-profit refused")
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    failed = await events.next(OrderFailed)
    assert isinstance(failed, OrderFailed)
    assert "take-profit 1 not set" in failed.reason
    assert "fake: take-profit refused" in failed.reason
    assert opened.position.take_profits is None  # nothing said that Bybit does not hold
    assert opened.position.take_profit == 0  # said as none
    on_bybit = live_bybit.position("SOLUSDT")
    assert on_bybit is not None
    assert on_bybit.stop_loss == opened.position.stop_loss
    assert live_bybit.partial_orders("SOLUSDT") == []


async def test_tp1_filling_while_the_bot_is_down_is_booked_and_the_stop_moved_at_restart(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """Bybit holds the plan while the bot is down: TP1 fills then, and the restart books it
    as its part (Bybit's figures), moves the stop-loss to breakeven once, and the rest exits
    there."""
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    await runtime.stop()  # down: nothing of ours runs from here
    await live_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    on_bybit = live_bybit.position("SOLUSDT")
    assert on_bybit is not None
    assert on_bybit.size == Decimal("13.2")  # TP1 filled on Bybit meanwhile
    assert len(live_bybit.requests_to(TRADING_STOP)) == 2

    runtime, events = await start_live()
    await runtime.engine.wait_idle()
    [position] = runtime.engine.open_positions()
    assert position.qty == Decimal("13.2")
    [part] = await runtime.engine.recent_trades(1)
    assert (part.reason, part.qty) == (CloseReason.TAKE_PROFIT, Decimal("13.1"))
    assert part.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    assert position.stop_loss == BREAKEVEN
    moved = bodies(live_bybit, TRADING_STOP)[2:]
    assert [(b["tpslMode"], b["stopLoss"]) for b in moved] == [("Full", "190.22")]

    await live_bybit.set_ticker("SOLUSDT", "190.21", bid="190.20", ask="190.22")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.STOP_LOSS
    assert abs(closed.trade.net_pnl) < Decimal("13.2") * Decimal("0.02")  # about flat
    assert len(live_bybit.requests_to(TRADING_STOP)) == 3  # the move, once


async def test_both_take_profits_in_one_jump_raise_no_false_alarm(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """TP1 and TP2 fill together: Bybit is flat before the breakeven move could be made, so
    the move is moot, and chat hears of the closes only."""
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    mark = len(events.seen)
    await live_bybit.set_ticker("SOLUSDT", "193.00", bid="192.99", ask="193.01")
    await events.next(PositionClosed, after=mark)
    await runtime.engine.wait_idle()
    assert runtime.engine.open_positions() == []
    assert not [e for e in events.seen[mark:] if isinstance(e, OrderFailed)]


async def test_a_refused_breakeven_move_is_tried_again_and_said_when_the_retry_fails(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    live_bybit.fail_next(TRADING_STOP, ret_code=10001, ret_msg="fake: refused", times=2)
    mark = len(events.seen)
    await live_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    await events.next(PositionReduced, after=mark)
    await runtime.engine.wait_idle()
    assert not [e for e in events.seen[mark:] if isinstance(e, OrderFailed)]  # not yet said
    clock.advance(timedelta(seconds=61))
    failed = await events.next(OrderFailed, after=mark)
    assert isinstance(failed, OrderFailed)
    assert "not moved to breakeven" in failed.reason
    clock.advance(timedelta(seconds=61))  # the third try: Bybit takes it

    def moved_on_bybit() -> bool:
        on_bybit = live_bybit.position("SOLUSDT")
        return on_bybit is not None and on_bybit.stop_loss == BREAKEVEN

    await live_bybit.wait_until(moved_on_bybit, timeout=5)
    await runtime.engine.wait_idle()
    [position] = runtime.engine.open_positions()
    assert position.stop_loss == BREAKEVEN
    said = [e for e in events.seen[mark:] if isinstance(e, OrderFailed)]
    assert len(said) == 1  # once


async def test_a_shrink_that_is_no_take_profit_cuts_the_plan_as_bybit_cuts_the_orders(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """Auto-deleveraging takes 5.0 of 26.3: Bybit cuts the earliest take-profit to fit
    (TP1 13.1 → 8.1). The plan follows, so TP1's smaller fill still counts as TP1 and the
    stop-loss moves to breakeven after it, not after TP2."""
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    mark = len(events.seen)
    await live_bybit.auto_deleverage("SOLUSDT", qty="5.0", price="190.00")
    await events.next(PositionReduced, after=mark)
    [position] = runtime.engine.open_positions()
    assert position.take_profits is not None
    cut = (TakeProfitLevel(LEVELS[0].price, Decimal("8.1")), LEVELS[1])
    assert position.take_profits.levels == cut
    held = live_bybit.partial_orders("SOLUSDT", "PartialTakeProfit")
    assert [(o.trigger_price, o.qty) for o in held] == [(lv.price, lv.qty) for lv in cut]

    mark = len(events.seen)
    await live_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    await events.next(PositionReduced, after=mark)
    await runtime.engine.wait_idle()  # the move follows the part
    [position] = runtime.engine.open_positions()
    assert (position.qty, position.stop_loss) == (Decimal("13.2"), BREAKEVEN)
