"""The trailing stop in live mode against the fake Bybit (real pybit, REST and the private
stream): set on the position through trading-stop after the entry fills, its exit booked with
Bybit's figures and named in chat, a refusal said while the position keeps its SL/TP, and a
restart that leaves it to Bybit.

SOLUSDT: a long fills at the ask, 190.01; at 50x the trailing stop of 20% of margin is 0.76
away (0.4%) and activates 30% in profit (0.6%: 191.15).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.live_support import CREATE, StartLive, open_sol, start_live
from tests.integration.support import (
    LIVE_KEY,
    LIVE_SECRET,
    AppFactory,
    Chat,
    append_signal,
    edit_strategy,
)
from trader.clock import ManualClock
from trader.events import OrderFailed, PositionClosed
from trader.models import CloseReason, TrailingStop

__all__ = ["start_live"]  # fixtures

TRADING_STOP = "/v5/position/trading-stop"
PLAN = TrailingStop(Decimal("0.76"), Decimal("191.15"))


def with_trailing(workdir: Path) -> None:
    edit_strategy(workdir, trailing_stop_pct=20, trailing_activation_pct=30)


async def test_the_trailing_stop_is_set_after_the_fill_and_its_exit_booked_and_named(
    apps: AppFactory,
    live_bybit: FakeBybit,
    fake_telegram: FakeTelegram,
    workdir: Path,
    clock: ManualClock,
) -> None:
    with_trailing(workdir)
    chat = Chat(fake_telegram)
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    app = await apps(trading_mode="live", bybit_api_key=LIVE_KEY, bybit_api_secret=LIVE_SECRET)
    await chat.ask("/start_trading", "Trading ON")
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s1")
    opened = await chat.expect("Opened SOLUSDT")
    assert "trailing stop 0.76 · active from 191.15" in opened.plain

    paths = [r.path for r in live_bybit.requests if r.path in (CREATE, TRADING_STOP)]
    assert paths == [CREATE, TRADING_STOP]  # after the fill, once
    [request] = live_bybit.requests_to(TRADING_STOP)
    assert json.loads(request.body) == {
        "category": "linear",
        "symbol": "SOLUSDT",
        "trailingStop": "0.76",
        "activePrice": "191.15",
        "tpslMode": "Full",
        "positionIdx": 0,
    }
    on_bybit = live_bybit.position("SOLUSDT")
    assert on_bybit is not None
    assert (on_bybit.trailing_stop, on_bybit.active_price) == (PLAN.distance, PLAN.active_price)
    [position] = app.engine.open_positions()
    assert position.trailing == PLAN

    await live_bybit.set_ticker("SOLUSDT", "191.20")  # active on Bybit
    await live_bybit.set_ticker("SOLUSDT", "192.00")  # follows: 191.24
    assert live_bybit.trailing_stop_price("SOLUSDT") == Decimal("191.24")
    mark = chat.mark()
    await live_bybit.set_ticker("SOLUSDT", "191.24", bid="191.23", ask="191.25")

    closed = await chat.expect("Closed SOLUSDT", after=mark)
    assert "trailing_stop (trailing stop)" in closed.plain
    [trade] = await app.engine.recent_trades(1)
    record = live_bybit.closed_pnl[-1]
    assert trade.reason is CloseReason.TRAILING_STOP
    assert (trade.net_pnl, trade.exit_price) == (record.closed_pnl, record.avg_exit_price)
    assert f"net PnL {record.closed_pnl:+,.2f} USDT" in closed.plain
    assert app.engine.open_positions() == []


async def test_a_trailing_stop_bybit_refuses_is_said_and_the_position_keeps_its_sl_and_tp(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_trailing(workdir)
    live_bybit.fail_next(TRADING_STOP, ret_code=10001, ret_msg="fake: trailing stop refused")
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)

    failed = await events.next(OrderFailed)
    assert isinstance(failed, OrderFailed)
    assert "trailing stop not set" in failed.reason
    assert "fake: trailing stop refused" in failed.reason
    assert not failed.at_risk
    assert opened.position.trailing is None  # nothing said that Bybit does not hold
    [position] = runtime.engine.open_positions()
    assert position.trailing is None
    on_bybit = live_bybit.position("SOLUSDT")
    assert on_bybit is not None
    assert on_bybit.stop_loss == position.stop_loss
    assert on_bybit.take_profit == position.take_profit
    assert on_bybit.trailing_stop is None
    stored = await runtime.repo.get_signal("s1")
    assert stored is not None
    assert stored.outcome == "opened"


async def test_a_restart_leaves_the_trailing_stop_to_bybit(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_trailing(workdir)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    await live_bybit.set_ticker("SOLUSDT", "192.00")  # active on Bybit: the stop at 191.24
    await runtime.stop()

    runtime, events = await start_live()
    [position] = runtime.engine.open_positions()
    assert position.trailing == PLAN  # as stored with the entry
    assert len(live_bybit.requests_to(TRADING_STOP)) == 1  # not set again
    assert live_bybit.trailing_stop_price("SOLUSDT") == Decimal("191.24")  # held by Bybit
    await live_bybit.set_ticker("SOLUSDT", "191.24", bid="191.23", ask="191.25")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.TRAILING_STOP
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
