"""An entry recovered after a crash between its fill and storing it gets its trade plan (the
strategy's trailing stop and several take-profits) as an entry does: what Bybit holds of it
already (the crash came after those calls) is adopted, what it lacks is placed, and nothing
is sent twice. Against the fake Bybit, through the real pybit client."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.integration.live_support import (
    CREATE,
    StartLive,
    direct_client,
    place_directly,
    reconciled,
    record_pending_entry,
    start_live,
)
from tests.integration.support import edit_strategy
from trader.clock import ManualClock
from trader.events import PositionOpened
from trader.models import TakeProfitLevel
from trader.orders import entry_link_id

__all__ = ["start_live"]  # the fixture, by name

TRADING_STOP = "/v5/position/trading-stop"
PLAN = {"take_profits": [{"pct": 40, "size": 50}, {"pct": 75, "size": 50}]}
# The plan of a 26.3 SOL long filled at 190.01 (the ask) at 50x: TP1 at 40 % of margin (a
# 0.8 % move), TP2 at 75 % (1.5 %), half each, on the tick; the trailing stop 20 % (0.4 %).
TP1, TP2 = (
    TakeProfitLevel(Decimal("191.53"), Decimal("13.1")),
    TakeProfitLevel(Decimal("192.86"), Decimal("13.2")),
)


async def crash_after_the_fill(
    start_live: StartLive, fake: FakeBybit, workdir: Path, clock: ManualClock, signal_id: str
) -> None:
    """The database and Bybit as a crash leaves them: the entry recorded as pending and
    sent, Bybit filled it (with its stop-loss, the take-profits to follow), nothing stored."""
    runtime, _ = await start_live()
    await fake.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await runtime.stop()
    await record_pending_entry(workdir, fake, clock, signal_id)
    await asyncio.to_thread(set_leverage, fake)
    await asyncio.to_thread(place_directly, fake, entry_link_id(signal_id), None)


def set_leverage(fake: FakeBybit) -> None:
    """The strategy's leverage on the symbol, as the entry sets it before its order."""
    direct_client(fake).set_leverage(
        category="linear", symbol="SOLUSDT", buyLeverage="50", sellLeverage="50"
    )


def add_take_profit(fake: FakeBybit, level: TakeProfitLevel) -> None:
    """A partial take-profit as the entry sets it, sent before the crash."""
    direct_client(fake).set_trading_stop(
        category="linear",
        symbol="SOLUSDT",
        positionIdx=0,
        tpslMode="Partial",
        takeProfit=str(level.price),
        tpSize=str(level.qty),
        tpOrderType="Market",
    )
    fake.requests.clear()  # the bot's requests are what the test counts


def held_take_profits(fake: FakeBybit) -> list[TakeProfitLevel]:
    orders = fake.partial_orders("SOLUSDT", "PartialTakeProfit")
    return sorted(
        (TakeProfitLevel(o.trigger_price, o.qty) for o in orders if o.trigger_price is not None),
        key=lambda level: level.price,
    )


async def test_a_recovered_entry_gets_its_trailing_stop_and_take_profits_placed(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    edit_strategy(workdir, trailing_stop_pct=20, **PLAN)
    await crash_after_the_fill(start_live, live_bybit, workdir, clock, "crash-3")

    _, events = await start_live()
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    position = opened.position
    assert position.take_profits is not None
    assert position.take_profits.levels == (TP1, TP2)
    assert position.trailing is not None
    assert position.trailing.distance == Decimal("0.76")  # 0.4 % of 190.01, on the tick
    # On Bybit: both take-profits and the trailing stop, each sent once; no order.
    assert held_take_profits(live_bybit) == [TP1, TP2]
    venue = live_bybit.position("SOLUSDT")
    assert venue is not None
    assert venue.trailing_stop == Decimal("0.76")
    assert len(live_bybit.requests_to(TRADING_STOP)) == 3
    assert live_bybit.requests_to(CREATE) == []
    [finding] = reconciled(events)
    assert "its entry was filled while the bot was not watching" in finding
    assert "check" not in finding  # nothing left to the trader


async def test_what_the_entry_set_before_the_crash_is_adopted_not_sent_again(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """The crash came after TP1 was set and before TP2: TP1 is adopted, TP2 placed."""
    edit_strategy(workdir, **PLAN)
    await crash_after_the_fill(start_live, live_bybit, workdir, clock, "crash-4")
    await asyncio.to_thread(add_take_profit, live_bybit, TP1)

    runtime, events = await start_live()
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    assert opened.position.take_profits is not None
    assert opened.position.take_profits.levels == (TP1, TP2)
    assert held_take_profits(live_bybit) == [TP1, TP2]  # not TP1 twice
    [sent] = live_bybit.requests_to(TRADING_STOP)
    body = json.loads(sent.body)
    assert (body["takeProfit"], body["tpSize"]) == ("192.86", "13.2")
    # After a restart the stored plan is what counts: nothing is placed again.
    await runtime.stop()
    runtime, events = await start_live()
    [position] = runtime.engine.open_positions()
    assert position.take_profits is not None
    assert position.take_profits.levels == (TP1, TP2)
    assert live_bybit.requests_to(TRADING_STOP) == [sent]


async def test_take_profits_on_bybit_the_bot_did_not_plan_are_left_and_said(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    edit_strategy(workdir, **PLAN)
    await crash_after_the_fill(start_live, live_bybit, workdir, clock, "crash-5")
    other = TakeProfitLevel(Decimal("195.00"), Decimal("5.0"))  # set by hand on Bybit
    await asyncio.to_thread(add_take_profit, live_bybit, other)

    _, events = await start_live()
    await events.next(PositionOpened)
    [finding] = reconciled(events)
    assert "Bybit holds take-profits the bot did not plan (195.000 × 5.0): check them" in finding
    assert held_take_profits(live_bybit) == [other]  # nothing placed beside it
    assert live_bybit.requests_to(TRADING_STOP) == []


async def test_a_take_profit_that_filled_while_the_bot_was_down_is_not_placed_again(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """The crash came after both TPs were set, and TP1 filled before the restart: Bybit holds
    less than the fill. A plan made for the fill would sell TP1's share twice: nothing is
    placed, and the trader is told to check."""
    edit_strategy(workdir, trailing_stop_pct=20, **PLAN)
    await crash_after_the_fill(start_live, live_bybit, workdir, clock, "crash-6")
    await asyncio.to_thread(add_take_profit, live_bybit, TP1)
    await asyncio.to_thread(add_take_profit, live_bybit, TP2)
    await live_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")  # TP1 fills
    venue = live_bybit.position("SOLUSDT")
    assert venue is not None
    assert venue.size == Decimal("13.2")

    _, events = await start_live()
    await events.next(PositionOpened)
    findings = reconciled(events)
    said = "Bybit holds 13.2 of the 26.3 filled: its trailing stop and take-profits"
    assert any(said in finding for finding in findings), findings
    assert live_bybit.requests_to(TRADING_STOP) == []  # nothing sent: TP1 not again
    assert held_take_profits(live_bybit) == [TP2]


async def test_the_breakeven_rule_follows_its_own_take_profit_or_goes(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """TP2 was set before the crash; TP1, placed at the restart, is refused: the breakeven
    rule after TP1 cannot follow TP2 instead, so it goes."""
    edit_strategy(workdir, breakeven_after_tp=1, **PLAN)
    await crash_after_the_fill(start_live, live_bybit, workdir, clock, "crash-7")
    await asyncio.to_thread(add_take_profit, live_bybit, TP2)
    live_bybit.fail_next(TRADING_STOP, ret_code=10001, ret_msg="fake: take-profit refused")

    _, events = await start_live()
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    plan = opened.position.take_profits
    assert plan is not None
    assert plan.levels == (TP2,)
    assert (plan.breakeven_after, plan.breakeven_price) == (None, None)
    [finding] = reconciled(events)
    assert "take-profit 1 not set (Bybit refused the take-profit: fake: take-profit" in finding
