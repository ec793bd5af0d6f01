"""Several take-profits and the breakeven move in paper mode, over the real aiogram client and
the paper engine on the fake Bybit's prices: the plan said in the open note and in /status,
each TP filling its qty at the book as its own part (announced), the stop-loss moved to
breakeven after TP1 and the rest closing there, both TPs in one update, and a restart between
TP1 and the rest that resumes the plan as it was.

SOLUSDT on the fake: a long fills at the ask, 190.01, qty 26.3 (100 USDT at 50x, step 0.1);
TP1 40% of margin (0.8%: 191.53) for half (13.1), TP2 75% (1.5%: 192.86) for the rest (13.2);
SL 188.49; breakeven after TP1 at 190.01 × 1.00055 ÷ 0.99945 = 190.2191… → 190.22.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram, SentMessage
from tests.integration.support import AppFactory, Chat, edit_strategy, open_from_chat
from trader.clock import ManualClock
from trader.models import CloseReason, TakeProfitLevel

LEVELS = (
    TakeProfitLevel(Decimal("191.53"), Decimal("13.1")),
    TakeProfitLevel(Decimal("192.86"), Decimal("13.2")),
)
BREAKEVEN = Decimal("190.22")


async def with_plan(workdir: Path, fake: FakeBybit) -> None:
    """The strategy with two take-profits and breakeven after TP1, SOLUSDT at 190.00."""
    await fake.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    edit_strategy(
        workdir,
        take_profits=[{"pct": 40, "size": 50}, {"pct": 75, "size": 50}],
        breakeven_after_tp=1,
    )


async def open_sol(chat: Chat, fake: FakeBybit, workdir: Path, clock: ManualClock) -> SentMessage:
    opened = await open_from_chat(chat, workdir, clock)
    await fake.wait_for_subscription("tickers.SOLUSDT")
    return opened


async def test_tp1_then_breakeven_then_the_rest_at_the_entry(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await with_plan(workdir, fake_bybit)
    app = await apps()
    chat = Chat(fake_telegram)
    opened = await open_sol(chat, fake_bybit, workdir, clock)
    assert "SL 188.49 · to breakeven 190.22 after TP1" in opened.plain
    assert "TP1 191.53 × 13.1 · TP2 192.86 × 13.2" in opened.plain
    [whole] = app.engine.open_positions()
    assert whole.take_profits is not None
    assert whole.take_profits.levels == LEVELS

    mark = chat.mark()
    await fake_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    part = await chat.expect("Partly closed SOLUSDT", after=mark)
    assert "Partly closed SOLUSDT long · TP1 of 2 (take-profit)" in part.plain
    assert "closed 13.1 @ 191.59" in part.plain
    assert "still open: 13.2, SL 188.49 · moving to breakeven 190.22" in part.plain
    await app.engine.wait_idle()  # the move follows the part, off the booking's path
    [position] = app.engine.open_positions()
    assert (position.qty, position.stop_loss) == (Decimal("13.2"), BREAKEVEN)
    status = await chat.ask("/status", "Open positions")
    assert "SL 190.22 (moved to breakeven)" in status.plain
    assert "TP1 191.53 × 13.1 ✓ · TP2 192.86 × 13.2" in status.plain

    mark = chat.mark()
    await fake_bybit.set_ticker("SOLUSDT", "190.21", bid="190.20", ask="190.22")
    closed = await chat.expect("Closed SOLUSDT", after=mark)
    assert "SL (stop-loss at breakeven)" in closed.plain
    rest, first = await app.engine.recent_trades(2)
    assert (first.reason, first.qty, first.exit_price) == (
        CloseReason.TAKE_PROFIT,
        Decimal("13.1"),
        Decimal("191.59"),
    )
    assert (rest.reason, rest.qty, rest.exit_price) == (
        CloseReason.STOP_LOSS,
        Decimal("13.2"),
        Decimal("190.20"),
    )
    # The rest closed about flat: within a tick's worth (0.02 at the bid) of zero.
    assert abs(rest.net_pnl) < Decimal("13.2") * Decimal("0.02")
    assert first.entry_fee + rest.entry_fee == whole.entry_fee  # the parts add up
    assert app.engine.open_positions() == []
    # One trade, the sum of its parts: so the close note says, and so the stats count it.
    total = first.net_pnl + rest.net_pnl
    assert f"the trade, 2 parts: net PnL {total:+.2f} USDT" in closed.plain
    assert "✅ Closed" in closed.plain  # a win overall, though the last part made ~0
    stats = await app.engine.stats()
    assert (stats.trades, stats.wins, stats.net_pnl) == (1, 1, total)
    profit = await chat.ask("/profit", "Closed trades")
    assert "Closed trades: 1 · won 1" in profit.plain


async def test_closing_the_rest_by_command_says_the_trades_total_with_notes_off(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    """With the close notes off, /close answers itself: for the last part, with the total."""
    await with_plan(workdir, fake_bybit)
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/notify closed off", "closed: on → off")
    await open_sol(chat, fake_bybit, workdir, clock)
    await fake_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")

    def tp1_filled() -> bool:
        return [p.qty for p in app.engine.open_positions()] == [Decimal("13.2")]

    for _ in range(500):  # up to 5 s; TP1's note is off too (a "closed" note)
        if tp1_filled():
            break
        await asyncio.sleep(0.01)
    assert tp1_filled()
    reply = await chat.ask("/close sol", "Closed SOLUSDT")
    rest, first = await app.engine.recent_trades(2)
    total = first.net_pnl + rest.net_pnl
    assert f"the trade, 2 parts: net PnL {total:+.2f} USDT" in reply.plain


async def test_tp1_and_tp2_in_one_update(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await with_plan(workdir, fake_bybit)
    app = await apps()
    chat = Chat(fake_telegram)
    await open_sol(chat, fake_bybit, workdir, clock)
    mark = chat.mark()
    await fake_bybit.set_ticker("SOLUSDT", "193.00", bid="192.99", ask="193.01")
    await chat.expect("Closed SOLUSDT", after=mark)
    second, first = await app.engine.recent_trades(2)
    assert [(t.reason, t.qty, t.exit_price) for t in (first, second)] == [
        (CloseReason.TAKE_PROFIT, Decimal("13.1"), Decimal("192.99")),
        (CloseReason.TAKE_PROFIT, Decimal("13.2"), Decimal("192.99")),
    ]
    assert app.engine.open_positions() == []


async def test_a_restart_between_tp1_and_the_rest_keeps_the_plan(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await with_plan(workdir, fake_bybit)
    first = await apps()
    chat = Chat(fake_telegram)
    await open_sol(chat, fake_bybit, workdir, clock)
    mark = chat.mark()
    await fake_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
    await chat.expect("Partly closed SOLUSDT", after=mark)
    await first.stop()

    second = await apps()
    [position] = second.engine.open_positions()
    assert position.take_profits is not None
    assert position.take_profits.breakeven_moved
    assert (position.qty, position.stop_loss) == (Decimal("13.2"), BREAKEVEN)
    mark = chat.mark()
    await fake_bybit.set_ticker("SOLUSDT", "192.90", bid="192.89", ask="192.91")  # TP2
    closed = await chat.expect("Closed SOLUSDT", after=mark)
    assert "TP (take-profit)" in closed.plain
    [trade] = await second.engine.recent_trades(1)
    assert (trade.reason, trade.qty, trade.exit_price) == (
        CloseReason.TAKE_PROFIT,
        Decimal("13.2"),
        Decimal("192.89"),
    )
