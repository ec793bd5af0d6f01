"""A trailing stop and several take-profits on one position, in paper and live (against the
fake Bybit, through real pybit): TP1 takes its part, then the price runs on past the trailing
stop's activation and comes back, and the trailing stop closes the rest. The parts add up to
one trade. With breakeven after TP1 too, the stop-loss's move leaves the trailing stop on
Bybit (a trading-stop call without ``trailingStop`` keeps it).

SOLUSDT: a long fills at the ask, 190.01, qty 26.3 (100 USDT at 50x); TP1 40% of margin
(191.53) for 13.1, TP2 75% (192.86) for 13.2; SL 188.49; breakeven after TP1 at 190.22. The
trailing stop of 20% of margin is 0.76 away and activates 50% in profit (1%: 191.91), past
TP1: at 192.50 it stands at 191.74, below TP2.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.live_support import StartLive, open_sol, start_live
from tests.integration.support import (
    LIVE_KEY,
    LIVE_SECRET,
    AppFactory,
    Chat,
    edit_strategy,
    open_from_chat,
)
from trader.clock import ManualClock
from trader.events import PositionClosed, PositionReduced
from trader.models import CloseReason, TrailingStop

__all__ = ["start_live"]  # fixtures

TRADING_STOP = "/v5/position/trading-stop"
TRAILING = TrailingStop(Decimal("0.76"), Decimal("191.91"))
BREAKEVEN = Decimal("190.22")
REST = Decimal("13.2")


def with_both(workdir: Path, *, breakeven: bool = False) -> None:
    """The strategy with two take-profits and a trailing stop (and breakeven after TP1)."""
    keys: dict[str, object] = {
        "take_profits": [{"pct": 40, "size": 50}, {"pct": 75, "size": 50}],
        "trailing_stop_pct": 20,
        "trailing_activation_pct": 50,
    }
    if breakeven:
        keys["breakeven_after_tp"] = 1
    edit_strategy(workdir, **keys)


async def run_up_and_back(fake: FakeBybit) -> None:
    """After TP1: past the activation (the stop at 191.74), back less than the distance."""
    await fake.set_ticker("SOLUSDT", "192.50", bid="192.49", ask="192.51")
    await fake.set_ticker("SOLUSDT", "191.80", bid="191.79", ask="191.81")


async def fall_to_the_trailing_stop(fake: FakeBybit) -> None:
    await fake.set_ticker("SOLUSDT", "191.74", bid="191.73", ask="191.75")


def bodies(fake: FakeBybit) -> list[dict[str, object]]:
    return [json.loads(request.body) for request in fake.requests_to(TRADING_STOP)]


@pytest.mark.parametrize("breakeven", [False, True], ids=["plain", "breakeven"])
async def test_paper_tp1_then_the_trailing_stop_closes_the_rest(
    breakeven: bool,
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    with_both(workdir, breakeven=breakeven)
    app = await apps()
    chat = Chat(fake_telegram)
    opened = await open_from_chat(chat, workdir, clock)
    await fake_bybit.wait_for_subscription("tickers.SOLUSDT")
    assert "trailing stop 0.76 · active from 191.91" in opened.plain
    assert "TP1 191.53 × 13.1 · TP2 192.86 × 13.2" in opened.plain
    [whole] = app.engine.open_positions()
    assert whole.trailing == TRAILING

    mark = chat.mark()
    await fake_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    part = await chat.expect("Partly closed SOLUSDT", after=mark)
    assert "closed 13.1 @ 191.59" in part.plain
    await app.engine.wait_idle()  # the breakeven move, if any, follows the part
    [held] = app.engine.open_positions()
    assert (held.qty, held.trailing) == (REST, TRAILING)
    assert held.stop_loss == (BREAKEVEN if breakeven else Decimal("188.49"))

    await run_up_and_back(fake_bybit)
    assert app.engine.open_positions() != []  # 191.80: above the stop at 191.74
    mark = chat.mark()
    await fall_to_the_trailing_stop(fake_bybit)
    closed = await chat.expect("Closed SOLUSDT", after=mark)
    assert "trailing_stop (trailing stop)" in closed.plain

    rest, first = await app.engine.recent_trades(2)
    assert (first.reason, first.qty, first.exit_price) == (
        CloseReason.TAKE_PROFIT,
        Decimal("13.1"),
        Decimal("191.59"),
    )
    assert (rest.reason, rest.qty, rest.exit_price) == (
        CloseReason.TRAILING_STOP,
        REST,
        Decimal("191.73"),  # a market sell: at the bid
    )
    assert first.qty + rest.qty == whole.qty
    assert first.entry_fee + rest.entry_fee == whole.entry_fee
    for trade in (first, rest):
        assert trade.net_pnl == trade.gross_pnl - trade.entry_fee - trade.exit_fee
    total = first.net_pnl + rest.net_pnl
    assert f"the trade, 2 parts: net PnL {total:+.2f} USDT" in closed.plain
    assert app.engine.open_positions() == []
    stats = await app.engine.stats()
    assert (stats.trades, stats.wins, stats.net_pnl) == (1, 1, total)


async def test_live_tp1_then_bybits_trailing_stop_closes_the_rest(
    apps: AppFactory,
    live_bybit: FakeBybit,
    fake_telegram: FakeTelegram,
    workdir: Path,
    clock: ManualClock,
) -> None:
    with_both(workdir)
    chat = Chat(fake_telegram)
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    app = await apps(trading_mode="live", bybit_api_key=LIVE_KEY, bybit_api_secret=LIVE_SECRET)
    opened = await open_from_chat(chat, workdir, clock)
    assert "trailing stop 0.76 · active from 191.91" in opened.plain
    assert "TP1 191.53 × 13.1 · TP2 192.86 × 13.2" in opened.plain
    # The trailing stop (Full) and the two partial take-profits, all on Bybit at once.
    assert [body["tpslMode"] for body in bodies(live_bybit)] == ["Full", "Partial", "Partial"]
    on_bybit = live_bybit.position("SOLUSDT")
    assert on_bybit is not None
    assert (on_bybit.trailing_stop, on_bybit.active_price) == (
        TRAILING.distance,
        TRAILING.active_price,
    )
    assert len(live_bybit.partial_orders("SOLUSDT", "PartialTakeProfit")) == 2

    mark = chat.mark()
    await live_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    part = await chat.expect("Partly closed SOLUSDT", after=mark)
    assert "closed 13.1" in part.plain
    assert on_bybit.size == REST
    assert on_bybit.trailing_stop == TRAILING.distance  # still held for the rest

    await run_up_and_back(live_bybit)
    assert live_bybit.trailing_stop_price("SOLUSDT") == Decimal("191.74")
    mark = chat.mark()
    await fall_to_the_trailing_stop(live_bybit)
    closed = await chat.expect("Closed SOLUSDT", after=mark)
    assert "trailing_stop (trailing stop)" in closed.plain
    assert live_bybit.position("SOLUSDT") is None  # Bybit closed all that was left
    assert live_bybit.stop_orders("SOLUSDT") == []  # TP2 went with it

    rest, first = await app.engine.recent_trades(2)
    tp_record, trailing_record = live_bybit.closed_pnl[-2:]
    assert (first.reason, first.qty) == (CloseReason.TAKE_PROFIT, Decimal("13.1"))
    assert (rest.reason, rest.qty) == (CloseReason.TRAILING_STOP, REST)
    assert (first.net_pnl, first.exit_price) == (tp_record.closed_pnl, tp_record.avg_exit_price)
    assert (rest.net_pnl, rest.exit_price) == (
        trailing_record.closed_pnl,
        trailing_record.avg_exit_price,
    )
    total = first.net_pnl + rest.net_pnl
    assert f"the trade, 2 parts: net PnL {total:+.2f} USDT" in closed.plain
    assert app.engine.open_positions() == []
    stats = await app.engine.stats()
    assert (stats.trades, stats.net_pnl) == (1, total)


async def test_live_the_breakeven_move_keeps_the_trailing_stop_on_bybit(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    with_both(workdir, breakeven=True)
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    mark = len(events.seen)
    await live_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    await events.next(PositionReduced, after=mark)
    await runtime.engine.wait_idle()  # the move follows the stored part

    [move] = bodies(live_bybit)[3:]
    assert (move["tpslMode"], move["stopLoss"]) == ("Full", str(BREAKEVEN))
    assert "trailingStop" not in move  # omitted: Bybit leaves the trailing stop as it is
    on_bybit = live_bybit.position("SOLUSDT")
    assert on_bybit is not None
    assert on_bybit.stop_loss == BREAKEVEN
    assert (on_bybit.trailing_stop, on_bybit.active_price) == (
        TRAILING.distance,
        TRAILING.active_price,
    )
    kinds = [order.stop_order_type for order in live_bybit.stop_orders("SOLUSDT")]
    assert "TrailingStop" in kinds
    [position] = runtime.engine.open_positions()
    assert (position.stop_loss, position.trailing) == (BREAKEVEN, TRAILING)

    await run_up_and_back(live_bybit)
    mark = len(events.seen)
    await fall_to_the_trailing_stop(live_bybit)
    closed = await events.next(PositionClosed, after=mark)
    assert isinstance(closed, PositionClosed)
    assert (closed.trade.reason, closed.trade.qty) == (CloseReason.TRAILING_STOP, REST)
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    assert closed.trade.net_pnl > 0  # above breakeven: the trailing stop, not the SL
    assert closed.total == sum(r.closed_pnl for r in live_bybit.closed_pnl[-2:])
