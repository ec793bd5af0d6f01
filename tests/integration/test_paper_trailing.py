"""The trailing stop in paper mode, over the real aiogram client and the paper engine on the
fake Bybit's prices: said in the open note and in /status, activated at its price, following
the best price, closing at the market when the price comes back by its distance, the SL
winning when one update crosses both, and resumed where it was after a restart.

SOLUSDT on the fake: a long fills at the ask, 190.01; at 50x the trailing stop of 20% of
margin is 0.76 away (0.4%) and activates 30% in profit (0.6%: 191.15); SL 188.49, TP 192.86.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bot.app import App
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram, SentMessage
from tests.integration.support import AppFactory, Chat, edit_strategy, open_from_chat
from trader.clock import ManualClock
from trader.models import CloseReason, TrailingStop

PLAN = TrailingStop(Decimal("0.76"), Decimal("191.15"))


async def with_trailing(workdir: Path, fake: FakeBybit) -> None:
    """The strategy with the trailing stop, SOLUSDT at 190.00 (190.01 to buy)."""
    await fake.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    edit_strategy(workdir, trailing_stop_pct=20, trailing_activation_pct=30)


async def open_sol(chat: Chat, fake: FakeBybit, workdir: Path, clock: ManualClock) -> SentMessage:
    """A SOLUSDT long opened from chat, its tickers streamed: each price below is seen."""
    opened = await open_from_chat(chat, workdir, clock)
    await fake.wait_for_subscription("tickers.SOLUSDT")
    return opened


async def stored_best(app: App, best: str) -> None:
    """Wait until the position's trailing stop has stored ``best`` (a deadline, not a sleep,
    bounds the wait)."""
    async with asyncio.timeout(5):
        while True:
            if Decimal(best) in (await app.runtime.repo.trailing_bests()).values():
                return
            await asyncio.sleep(0.01)


async def test_the_trailing_stop_activates_follows_and_closes_on_the_fall_back(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await with_trailing(workdir, fake_bybit)
    app = await apps()
    chat = Chat(fake_telegram)
    opened = await open_sol(chat, fake_bybit, workdir, clock)
    assert "trailing stop 0.76 · active from 191.15" in opened.plain
    [position] = app.engine.open_positions()
    assert position.trailing == PLAN
    status = await chat.ask("/status", "Open positions")
    assert "trailing stop 0.76 · active from 191.15" in status.plain

    await fake_bybit.set_ticker("SOLUSDT", "191.10")  # not active yet ...
    await fake_bybit.set_ticker("SOLUSDT", "190.30")  # ... so this fall closes nothing
    await fake_bybit.set_ticker("SOLUSDT", "191.20")  # active: the stop at 190.44
    await fake_bybit.set_ticker("SOLUSDT", "192.00")  # follows: 191.24
    await fake_bybit.set_ticker("SOLUSDT", "191.30")  # back 0.70: less than the distance
    mark = chat.mark()
    await fake_bybit.set_ticker("SOLUSDT", "191.24", bid="191.23", ask="191.25")

    closed = await chat.expect("Closed SOLUSDT", after=mark)
    assert "trailing_stop (trailing stop)" in closed.plain
    [trade] = await app.engine.recent_trades(1)
    assert trade.reason is CloseReason.TRAILING_STOP
    assert trade.exit_price == Decimal("191.23")  # a market sell: at the bid
    assert trade.net_pnl == trade.gross_pnl - trade.entry_fee - trade.exit_fee
    assert trade.net_pnl > 0
    assert app.engine.open_positions() == []


async def test_the_stop_loss_wins_when_one_update_crosses_it_and_the_trailing_stop(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await with_trailing(workdir, fake_bybit)
    app = await apps()
    chat = Chat(fake_telegram)
    await open_sol(chat, fake_bybit, workdir, clock)
    await fake_bybit.set_ticker("SOLUSDT", "192.00")  # active, the stop at 191.24
    mark = chat.mark()
    await fake_bybit.set_ticker("SOLUSDT", "188.40", bid="188.39", ask="188.41")

    closed = await chat.expect("Closed SOLUSDT", after=mark)
    assert "SL (stop-loss)" in closed.plain
    [trade] = await app.engine.recent_trades(1)
    assert (trade.reason, trade.exit_price) == (CloseReason.STOP_LOSS, Decimal("188.39"))


async def test_a_restart_resumes_the_trailing_stop_from_the_best_price_it_had(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await with_trailing(workdir, fake_bybit)
    first = await apps()
    chat = Chat(fake_telegram)
    await open_sol(chat, fake_bybit, workdir, clock)
    await fake_bybit.set_ticker("SOLUSDT", "191.20")  # active
    await fake_bybit.set_ticker("SOLUSDT", "192.00")  # the best: the stop at 191.24
    await stored_best(first, "192.00")
    await first.stop()

    second = await apps()
    [position] = second.engine.open_positions()
    assert position.trailing == PLAN
    mark = chat.mark()
    # Started afresh it would activate here with the stop at 190.48: resumed, it closes.
    await fake_bybit.set_ticker("SOLUSDT", "191.24", bid="191.23", ask="191.25")

    await chat.expect("Closed SOLUSDT", after=mark)
    [trade] = await second.engine.recent_trades(1)
    assert (trade.reason, trade.exit_price) == (CloseReason.TRAILING_STOP, Decimal("191.23"))
