"""Live mode against the fake Bybit (real pybit, REST and the private stream): how a
position is closed and booked with Bybit's own PnL, by its stop-loss, its TTL, /close
from the chat, or by hand on Bybit.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.live_support import CREATE, StartLive, open_sol, start_live
from tests.integration.support import LIVE_KEY, LIVE_SECRET, AppFactory, Chat, append_signal
from trader.clock import ManualClock
from trader.events import PositionClosed
from trader.models import CloseReason
from trader.orders import exit_link_id
from trader.ports import OrderStatus

__all__ = ["start_live"]  # fixtures

EXECUTIONS = "/v5/execution/list"


async def test_stop_loss_close_comes_from_the_stream_with_bybits_pnl(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    await live_bybit.set_ticker("SOLUSDT", last="188.40", bid="188.38", ask="188.42")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    trade = closed.trade
    assert trade.reason is CloseReason.STOP_LOSS
    record = live_bybit.closed_pnl[-1]
    assert trade.net_pnl == record.closed_pnl
    assert trade.exit_price == record.avg_exit_price
    assert trade.net_pnl < 0
    # Entry and exit came from the stream's pushes: REST was never asked for executions.
    assert live_bybit.requests_to(EXECUTIONS) == []
    assert runtime.engine.open_positions() == []


async def test_ttl_close_sends_a_recorded_reduce_only_order(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    clock.advance(opened.position.expires_at - clock.now() + timedelta(seconds=1))
    await live_bybit.set_ticker("SOLUSDT", last="190.50", bid="190.49", ask="190.51")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.TTL
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    exits = [json.loads(r.body) for r in live_bybit.requests_to(CREATE)][1:]
    assert len(exits) == 1
    assert exits[0]["reduceOnly"] is True
    assert exits[0]["orderLinkId"] == exit_link_id("s1")
    stored = await runtime.repo.get_order(exit_link_id("s1"))
    assert stored is not None
    assert (stored.status, stored.reduce_only) == (OrderStatus.FILLED, True)
    assert live_bybit.position("SOLUSDT") is None


async def test_close_from_chat_closes_on_bybit(
    apps: AppFactory,
    live_bybit: FakeBybit,
    fake_telegram: FakeTelegram,
    workdir: Path,
    clock: ManualClock,
) -> None:
    chat = Chat(fake_telegram)
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await apps(trading_mode="live", bybit_api_key=LIVE_KEY, bybit_api_secret=LIVE_SECRET)
    await chat.ask("/start_trading", "Trading ON")
    mark = chat.mark()
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s1")
    await chat.expect("Opened SOLUSDT", after=mark)
    await live_bybit.set_ticker("SOLUSDT", last="191.00", bid="190.99", ask="191.01")
    reply = await chat.ask("/close SOLUSDT", "Closed SOLUSDT")
    assert live_bybit.position("SOLUSDT") is None
    record = live_bybit.closed_pnl[-1]
    assert f"net PnL {record.closed_pnl:+,.2f} USDT" in reply.plain  # Bybit's own closedPnl
    close = json.loads(live_bybit.requests_to(CREATE)[-1].body)
    assert (close["reduceOnly"], close["orderLinkId"]) == (True, exit_link_id("s1"))
    await chat.expect("manual", after=mark)  # the close notification says why


async def test_a_position_closed_by_hand_on_bybit_is_detected_and_reported(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    await live_bybit.close_by_hand("SOLUSDT")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.EXTERNAL
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    assert runtime.engine.open_positions() == []


async def test_the_live_equity_curve_is_the_balance_bybit_reported_after_each_close(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """The account holds 10,000 USDT: the curve starts there, not at the paper 1,000, and
    each point is Bybit's balance just after that close."""
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    entry_fee_paid = live_bybit.wallet_balance
    await live_bybit.set_ticker("SOLUSDT", last="188.40", bid="188.38", ask="188.42")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    after_close = live_bybit.wallet_balance
    assert after_close != entry_fee_paid  # the close moved the account

    await runtime.engine.wait_idle()  # the mark is a task of the engine's, off the close's path
    performance = await runtime.engine.performance()
    assert performance.curve == [(closed.trade.closed_at, after_close)]
    assert performance.curve_start == after_close - closed.trade.net_pnl
    assert performance.curve_start > 9_000  # the account's, not paper_balance_usdt (1,000)
    assert performance.stats.trades == 1
