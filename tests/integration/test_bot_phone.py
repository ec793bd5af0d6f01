"""Typing on a phone: commands in any case, symbols without their quote coin, and limits
typed with odd digits, over the real aiogram client and the fake Bot API server."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import CHAT, AppFactory, Chat, append_signal, open_from_chat
from trader.clock import ManualClock


async def test_commands_are_understood_in_any_case(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    await apps()
    chat = Chat(fake_telegram)
    status = await chat.ask("/STATUS", "Status")
    assert "trading OFF" in status.plain
    await chat.ask("/Start_Trading", "Trading ON")


async def test_a_symbol_without_its_quote_coin_is_closed(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await open_from_chat(chat, workdir, clock, "DOGEUSDT")
    await chat.ask("/close doge", "Closed DOGEUSDT")
    assert app.engine.open_positions() == []


async def test_a_limit_typed_with_foreign_digits_or_an_exponent_changes_nothing(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    before = app.engine.limits
    await chat.ask("/limits daily_loss 1e9999", "like 250")
    await chat.ask("/limits max_positions ５", "like 250")
    refused = await chat.ask("/limits daily_loss " + "9" * 30 + "x" * 4000, "needs a number")
    assert len(refused.plain) < 400  # the echo is cut: Telegram takes the reply
    assert app.engine.limits == before


async def test_the_close_all_answer_counts_only_on_the_message_that_asked(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    note = await open_from_chat(chat, workdir, clock)
    question = await chat.ask("/close all", "Close 1 open position at market?")
    yes = fake_telegram.message(CHAT, question.message_id).button_data("Yes, close 1")
    # The "Yes" data pressed on the plain notification closes nothing.
    answer = await fake_telegram.wait_for_answer(
        fake_telegram.push_callback(CHAT, note.message_id, yes)
    )
    assert "Already answered" in answer.text
    assert len(app.engine.open_positions()) == 1
    chat.press(question, "Yes")  # on the question itself it does
    await fake_telegram.wait_until(lambda: app.engine.open_positions() == [])


async def test_limits_margin_sets_the_trade_size_and_replies_show_what_it_was(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    shown = await chat.ask("/limits", "Limits")
    assert "margin: 100 USDT (margin of each trade)" in shown.plain
    assert "position_size: 100 USDT (cap of the margin of each trade)" in shown.plain
    changed = await chat.ask("/limits margin 40", "margin changed: 100 USDT → 40 USDT.")
    assert "margin: 40 USDT" in changed.plain
    opened = await open_from_chat(chat, workdir, clock)
    assert "margin 39." in opened.plain  # 40 USDT of margin, less the qty step's rounding
    [position] = app.engine.open_positions()
    assert position.margin <= 40
    reset = await chat.ask("/limits margin reset", "back to the strategy file's value")
    assert "40 USDT → 100 USDT" in reset.plain


async def test_raising_the_daily_loss_limit_past_todays_loss_says_the_stop_is_lifted(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/limits daily_loss 30", "daily_loss changed")
    await chat.ask("/start_trading", "Trading ON")
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY")
    await chat.expect("Opened SOLUSDT long")
    await fake_bybit.set_ticker("SOLUSDT", last="188.00", bid="187.99", ask="188.01")
    await chat.expect("Daily loss limit reached")
    assert (await app.engine.status()).daily_loss_reached
    lifted = await chat.ask("/limits daily_loss 500", "daily_loss changed")
    assert "daily-loss stop is lifted" in lifted.plain
    quiet = await chat.ask("/limits daily_loss 400", "daily_loss changed")
    assert "lifted" not in quiet.plain  # it was not in force any more
