"""A partial take-profit cancelled by hand in Bybit's app is found at once from the order
push, or by reconciliation after a restart or a stream gap: it leaves the stored plan (so
/status tells the truth), it is said in chat, and it is not placed again: the trader took it
away. A breakeven rule whose TP is gone goes with it. Against the fake Bybit, through pybit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.integration.live_support import StartLive, open_sol, reconciled, start_live
from tests.integration.test_live_take_profits import LEVELS, TRADING_STOP, with_plan
from trader.clock import ManualClock
from trader.events import PositionReduced, Reconciled

__all__ = ["start_live"]  # the fixture, by name

TP1, TP2 = LEVELS
OPEN_ORDERS = "/v5/order/realtime"


async def test_a_take_profit_cancelled_while_the_bot_was_down_is_found_at_start_up(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    sent = len(live_bybit.requests_to(TRADING_STOP))
    await runtime.stop()
    await live_bybit.cancel_take_profit("SOLUSDT", TP2.price)  # no one is listening

    runtime, events = await start_live()
    [finding] = reconciled(events)
    assert "TP2 192.860 × 13.2 is no longer on Bybit (cancelled there?); not placed again" in (
        finding
    )
    assert "breakeven" not in finding  # the rule follows TP1, which is there
    [position] = runtime.engine.open_positions()
    assert position.take_profits is not None
    assert position.take_profits.levels == (TP1,)
    assert position.take_profits.breakeven_after == 1
    assert position.take_profit == TP1.price
    assert len(live_bybit.requests_to(TRADING_STOP)) == sent  # nothing placed again
    assert await runtime.engine.reconcile("stream restored") == []  # said once

    # Stored: the next restart finds the plan without it, and says nothing more.
    await runtime.stop()
    runtime, events = await start_live()
    [position] = runtime.engine.open_positions()
    assert position.take_profits is not None
    assert position.take_profits.levels == (TP1,)
    assert reconciled(events) == []


async def test_the_breakeven_rule_goes_with_its_take_profit(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    mark = len(events.seen)
    await live_bybit.cancel_take_profit("SOLUSDT", TP1.price)
    said = await events.next(Reconciled, after=mark)
    assert isinstance(said, Reconciled)
    [finding] = said.findings
    assert "TP1 191.530 × 13.1 is no longer on Bybit" in finding
    assert "the stop-loss will not move to breakeven" in finding
    [position] = runtime.engine.open_positions()
    assert position.take_profits is not None
    assert position.take_profits.levels == (TP2,)
    assert position.take_profits.breakeven_after is None

    # TP2 still closes its share; the rest keeps its stop-loss (no move is sent).
    sent = len(live_bybit.requests_to(TRADING_STOP))
    mark = len(events.seen)
    await live_bybit.set_ticker("SOLUSDT", "192.90", bid="192.89", ask="192.91")
    await events.next(PositionReduced, after=mark)
    await runtime.engine.wait_idle()  # a breakeven move would have been spawned by now
    [position] = runtime.engine.open_positions()
    assert position.qty == Decimal("13.1")  # TP2's 13.2 took its share
    assert position.stop_loss == Decimal("188.49")
    assert len(live_bybit.requests_to(TRADING_STOP)) == sent


async def test_the_cancel_pushed_by_bybit_is_acted_on_at_once(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    mark = len(events.seen)
    await live_bybit.cancel_take_profit("SOLUSDT", TP2.price)  # pushes the order's end
    said = await events.next(Reconciled, after=mark)
    assert isinstance(said, Reconciled)
    assert said.trigger == "a take-profit was cancelled on Bybit"
    [finding] = said.findings
    assert "TP2 192.860 × 13.2 is no longer on Bybit" in finding
    [position] = runtime.engine.open_positions()
    assert position.take_profits is not None
    assert position.take_profits.levels == (TP1,)


async def test_a_cancel_that_could_not_be_checked_then_is_checked_the_next_minute(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    # Bybit refuses the read of the orders the push sets off: the check cannot be made.
    live_bybit.fail_next(OPEN_ORDERS, ret_code=10001, ret_msg="fake: refused")
    reads = len(live_bybit.requests_to(OPEN_ORDERS))
    await live_bybit.cancel_take_profit("SOLUSDT", TP2.price)
    await live_bybit.wait_until(lambda: len(live_bybit.requests_to(OPEN_ORDERS)) > reads, 5.0)
    await runtime.engine.wait_idle()
    [position] = runtime.engine.open_positions()
    assert position.take_profits is not None
    assert position.take_profits.levels == LEVELS  # not known yet

    # The minute's check tries again, for that take-profit; then it is done with it.
    [finding] = await runtime.engine.reconcile("periodic check", periodic=True)
    assert "TP2 192.860 × 13.2 is no longer on Bybit" in finding
    [position] = runtime.engine.open_positions()
    assert position.take_profits is not None
    assert position.take_profits.levels == (TP1,)
    reads = len(live_bybit.requests_to(OPEN_ORDERS))
    assert await runtime.engine.reconcile("periodic check", periodic=True) == []
    assert len(live_bybit.requests_to(OPEN_ORDERS)) == reads  # nothing pending: no reads
