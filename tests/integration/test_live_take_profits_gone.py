"""A partial take-profit cancelled by hand in Bybit's app while the bot was not looking (a
restart, a stream gap) is found by reconciliation: it leaves the stored plan (so /status
tells the truth), it is said in chat, and it is not placed again: the trader took it away.
A breakeven rule whose TP is gone goes with it. Against the fake Bybit, through pybit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.integration.live_support import StartLive, open_sol, start_live
from tests.integration.test_live_take_profits import LEVELS, TRADING_STOP, with_plan
from trader.clock import ManualClock
from trader.events import PositionReduced

__all__ = ["start_live"]  # the fixture, by name

TP1, TP2 = LEVELS


async def test_a_take_profit_cancelled_on_bybit_leaves_the_plan_and_is_said(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    sent = len(live_bybit.requests_to(TRADING_STOP))
    await live_bybit.cancel_take_profit("SOLUSDT", TP2.price)

    # The minute's check leaves it to the checks after a gap or a restart.
    assert await runtime.engine.reconcile("periodic check", periodic=True) == []
    [finding] = await runtime.engine.reconcile("stream restored")
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

    # Stored: a restart finds the plan without it.
    await runtime.stop()
    runtime, events = await start_live()
    [position] = runtime.engine.open_positions()
    assert position.take_profits is not None
    assert position.take_profits.levels == (TP1,)
    assert position.take_profit == TP1.price


async def test_the_breakeven_rule_goes_with_its_take_profit(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_plan(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    await live_bybit.cancel_take_profit("SOLUSDT", TP1.price)
    [finding] = await runtime.engine.reconcile("stream restored")
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
