"""The guards of issue 14 over the real aiogram client and the paper engine on the fake Bybit:
cooldown after a loss, the daily profit target, the drawdown stop, the leverage cap, each
set from chat with /limits and switched off again."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import (
    CHAT,
    AppFactory,
    Chat,
    append_signal,
    edit_strategy,
    open_from_chat,
    wait_outcome,
)
from trader.clock import ManualClock
from trader.models import CloseReason

LOG = "signals_log.csv"
TICK = Decimal("0.01")  # SOLUSDT's on the fake


async def test_a_losing_close_cools_its_symbol_down_for_the_set_minutes(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    workdir: Path,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    with caplog.at_level(logging.INFO, logger="bot.handlers.limits"):
        await chat.ask("/limits cooldown 30", "cooldown changed: off → 30 min")
    # Who changed it, and when (the record's time), is in the log.
    [changed] = [r for r in caplog.records if r.name == "bot.handlers.limits"]
    assert f"limit cooldown set: None -> 30, by user {CHAT}" in changed.getMessage()
    await open_from_chat(chat, workdir, clock)
    await chat.ask("/close sol", "Closed SOLUSDT")  # at the bid, after the fees: a loss
    [trade] = await app.engine.recent_trades(1)
    assert trade.net_pnl < 0

    clock.advance(timedelta(minutes=29))
    append_signal(workdir / LOG, clock.now(), "SOLUSDT", "BUY", signal_id="cooling")
    append_signal(workdir / LOG, clock.now(), "BTCUSDT", "BUY", signal_id="other")
    await chat.expect("Opened BTCUSDT")  # another symbol is not held back
    assert await wait_outcome(app, "cooling") == "filtered:cooldown"

    clock.advance(timedelta(minutes=2))  # 31 minutes after the loss
    mark = chat.mark()
    append_signal(workdir / LOG, clock.now(), "SOLUSDT", "BUY", signal_id="again")
    await chat.expect("Opened SOLUSDT", after=mark)
    assert await wait_outcome(app, "again") == "opened"

    await chat.ask("/limits cooldown off", "cooldown changed: 30 min → off")


async def test_the_cooldown_survives_a_restart(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    first = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/limits cooldown 30", "cooldown")
    await open_from_chat(chat, workdir, clock)
    await chat.ask("/close sol", "Closed SOLUSDT")
    await first.stop()
    second = await apps()
    clock.advance(timedelta(minutes=10))
    append_signal(workdir / LOG, clock.now(), "SOLUSDT", "BUY", signal_id="after-restart")
    assert await wait_outcome(second, "after-restart") == "filtered:cooldown"


async def test_the_daily_profit_target_stops_new_entries_and_says_so_once(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/limits profit_target 5", "profit_target changed: off → 5 USDT")
    await open_from_chat(chat, workdir, clock)
    await fake_bybit.set_ticker("SOLUSDT", last="151.50", bid="151.49", ask="151.51")
    await chat.ask("/close sol", "Closed SOLUSDT")
    [trade] = await app.engine.recent_trades(1)
    assert trade.net_pnl >= 5
    reached = await chat.expect("Daily profit target reached")
    assert "No new entries until 00:00 UTC" in reached.plain

    append_signal(workdir / LOG, clock.now(), "BTCUSDT", "BUY", signal_id="after-target")
    assert await wait_outcome(app, "after-target") == "rejected:daily_profit_target"
    said = [m for m in fake_telegram.sent() if "profit target" in m.plain]
    assert len(said) == 1  # once a day; the rejection itself is quiet


async def test_the_drawdown_stop_turns_trading_off_closes_positions_and_is_remembered(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    first = await apps()
    chat = Chat(fake_telegram)
    # 1% of the 1,000 USDT paper balance: one losing close of about 20 USDT breaks it.
    await chat.ask("/limits max_drawdown 1", "max_drawdown changed: off → 1%")
    await open_from_chat(chat, workdir, clock)
    append_signal(workdir / LOG, clock.now(), "BTCUSDT", "BUY")
    await chat.expect("Opened BTCUSDT")
    await fake_bybit.set_ticker("SOLUSDT", last="149.50", bid="149.49", ask="149.51")
    await chat.ask("/close sol", "Closed SOLUSDT")

    stopped = await chat.expect("Drawdown stop")
    assert "Trading is OFF" in stopped.plain
    await chat.expect("Closed BTCUSDT")
    await first.engine.wait_idle()
    assert first.engine.open_positions() == []
    assert not first.engine.trading_enabled
    [btc] = [t for t in await first.engine.recent_trades(2) if t.symbol == "BTCUSDT"]
    assert btc.reason is CloseReason.DRAWDOWN
    await first.stop()

    second = await apps()
    assert not second.engine.trading_enabled  # remembered
    # Switched on again, the peak counts from the equity it stopped at: no second stop.
    await chat.ask("/start_trading", "Trading ON")
    mark = chat.mark()
    append_signal(workdir / LOG, clock.now(), "ETHUSDT", "BUY")
    await chat.expect("Opened ETHUSDT", after=mark)
    await chat.ask("/close eth", "Closed ETHUSDT")
    await second.engine.wait_idle()
    assert second.engine.trading_enabled


async def test_the_leverage_is_capped_at_the_instruments_maximum_and_the_note_says_so(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    fake_bybit.set_max_leverage("SOLUSDT", "25")
    app = await apps()
    chat = Chat(fake_telegram)
    opened = await open_from_chat(chat, workdir, clock)
    assert "25x (capped from 50x: SOLUSDT's maximum)" in opened.plain
    [position] = app.engine.open_positions()
    assert position.leverage == 25
    # Sized at the capped leverage: margin × 25 ÷ price, not × 50.
    assert position.qty * position.entry_price / 25 <= 100
    assert position.qty * position.entry_price / 25 > 99


async def test_risk_based_sizing_loses_the_set_percent_of_the_balance_at_the_stop(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    # 1% of the 1,000 USDT paper balance; the cap is raised so that it does not bind.
    edit_strategy(workdir, risk_per_trade_pct=1, max_position_size_usdt=1000)
    app = await apps()
    chat = Chat(fake_telegram)
    await open_from_chat(chat, workdir, clock)
    [position] = app.engine.open_positions()
    fee = Decimal("0.00055")
    at_stop = position.qty * (
        abs(position.entry_price - position.stop_loss)
        + fee * (position.entry_price + position.stop_loss)
    )
    assert Decimal("9.9") < at_stop <= Decimal(10)
    stop = position.stop_loss
    await fake_bybit.set_ticker("SOLUSDT", last=str(stop), bid=str(stop), ask=str(stop + 2 * TICK))
    closed = await chat.expect("Closed SOLUSDT")
    assert "SL" in closed.plain
    [trade] = await app.engine.recent_trades(1)
    assert Decimal(-10) <= trade.net_pnl < Decimal("-9.8")


async def test_margin_as_a_percent_of_the_balance(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    edit_strategy(workdir, position_size_pct=5)  # 5% of 1,000: 50 USDT, under the 100 cap
    app = await apps()
    chat = Chat(fake_telegram)
    opened = await open_from_chat(chat, workdir, clock)
    [position] = app.engine.open_positions()
    assert Decimal("49.5") < position.margin <= Decimal(50)
    assert f"margin {position.margin.quantize(Decimal('0.01'))} USDT" in opened.plain


async def test_an_approval_during_a_cooldown_is_refused_at_the_press(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    """Two questions about SOL: the first is approved, opened and closed at a loss; the
    second, pressed during the cooldown that loss started, trades nothing."""
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/limits cooldown 30", "cooldown changed")
    await chat.ask("/confirm on", "Confirmation mode ON")
    await chat.ask("/start_trading", "after your confirmation")
    questions = []
    for signal_id in ("first", "second"):
        mark = chat.mark()
        append_signal(workdir / LOG, clock.now(), "SOLUSDT", "BUY", signal_id=signal_id)
        questions.append(await chat.expect("Trade this signal? SOLUSDT", after=mark))
    chat.press(questions[0], "Open")
    await chat.expect("Opened SOLUSDT")
    await chat.ask("/close sol", "Closed SOLUSDT")
    chat.press(questions[1], "Open")
    await fake_telegram.wait_until(
        lambda: "cooldown" in fake_telegram.message(CHAT, questions[1].message_id).plain
    )
    assert await wait_outcome(app, "second") == "rejected:cooldown"
    assert app.engine.open_positions() == []


async def test_a_profit_target_set_below_todays_profit_is_said_at_once(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await apps()
    chat = Chat(fake_telegram)
    await open_from_chat(chat, workdir, clock)
    await fake_bybit.set_ticker("SOLUSDT", last="151.50", bid="151.49", ask="151.51")
    await chat.ask("/close sol", "Closed SOLUSDT")  # about +40 USDT today
    await chat.ask("/limits profit_target 5", "profit_target changed: off → 5 USDT")
    await chat.expect("Daily profit target reached")
