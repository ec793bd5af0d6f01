"""Every command over the real aiogram client and the fake Bot API server, with the paper
engine on the fake Bybit behind it: the replies, bad arguments, and unauthorised chats.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot import render
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import (
    CHAT,
    STRANGER,
    AppFactory,
    Chat,
    append_signal,
    open_from_chat,
)
from trader.clock import ManualClock


async def test_start_and_help_list_the_commands_registered_at_start(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    await apps()
    chat = Chat(fake_telegram)
    await chat.expect("Engine started")
    # The handshake (deleteWebhook, setMyCommands) runs beside trading, not before it.
    await fake_telegram.wait_until(lambda: bool(fake_telegram.commands))
    assert fake_telegram.calls("deleteWebhook")
    assert [name for name, _ in fake_telegram.commands] == [n for n, _ in render.COMMANDS]

    started = await chat.ask("/start", "Bybit auto-trader")
    assert "/status" in started.plain
    assert "/close" in started.plain
    assert "paper mode" in started.plain
    helped = await chat.ask("/help", "Bybit auto-trader")
    assert helped.plain == started.plain


async def test_trading_switches_reply_and_are_remembered_across_a_restart(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.expect("trading off")
    await chat.ask("/start_trading", "Trading ON")
    assert app.engine.trading_enabled
    await app.stop()
    # Handled updates were confirmed (aiogram asks past them at once): no rerun on restart.
    assert fake_telegram.pending_updates() == []

    app = await apps()
    status = await chat.ask("/status", "Status")
    assert "trading ON" in status.plain
    assert len([m for m in fake_telegram.sent(CHAT) if "Trading ON" in m.plain]) == 1
    await chat.ask("/stop_trading", "Trading OFF")
    assert not app.engine.trading_enabled
    status = await chat.ask("/status", "Status")
    assert "trading OFF" in status.plain
    assert "Balance: 1,000.00 USDT" in status.plain
    assert "Open positions: none (limit 15)" in status.plain


async def test_close_a_symbol_and_bad_arguments_change_nothing(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/close", "Usage: /close SYMBOL")
    await chat.ask("/close SOLUSDT BTCUSDT", "Usage: /close SYMBOL")
    await chat.ask("/close <sol>", "<sol> is not a symbol")
    await chat.ask("/close XRPUSDT", "No open position in XRPUSDT")

    await open_from_chat(chat, workdir, clock)
    assert len(app.engine.open_positions()) == 1
    mark = chat.mark()
    closed = await chat.ask("/close solusdt", "(closed by command)")
    assert "exit 149.99" in closed.plain
    # One message with the close's figures, not a reply and a note saying it twice.
    assert [m for m in fake_telegram.sent(CHAT)[mark:] if "SOLUSDT" in m.plain] == [closed]
    assert app.engine.open_positions() == []


async def test_close_all_asks_with_buttons_first_and_a_second_press_does_nothing(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    workdir: Path,
    clock: ManualClock,
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/close all", "No open positions")
    await chat.ask("/start_trading", "Trading ON")
    for symbol in ("SOLUSDT", "BTCUSDT"):
        append_signal(workdir / "signals_log.csv", clock.now(), symbol, "BUY")
        await chat.expect(f"Opened {symbol}")

    question = await chat.ask("/close all", "Close all 2 open positions at market?")
    assert len(app.engine.open_positions()) == 2  # nothing is closed before the answer
    await fake_telegram.wait_for_answer(chat.press(question, "Cancel"))
    await fake_telegram.wait_until(
        lambda: "Cancelled" in fake_telegram.message(CHAT, question.message_id).plain
    )
    assert len(app.engine.open_positions()) == 2

    stale = await chat.ask("/close all", "Close all 2 open positions at market?")
    await chat.ask("/close BTCUSDT", "Closed BTCUSDT")
    await fake_telegram.wait_for_answer(chat.press(stale, "Yes"))
    await fake_telegram.wait_until(
        lambda: (
            "Nothing closed: 1 position is open now, not 2"
            in fake_telegram.message(CHAT, stale.message_id).plain
        )
    )
    assert len(app.engine.open_positions()) == 1
    mark = chat.mark()
    append_signal(workdir / "signals_log.csv", clock.now(), "BTCUSDT", "BUY", signal_id="again")
    await chat.expect("Opened BTCUSDT", after=mark)

    question = await chat.ask("/close all", "Close all 2 open positions at market?")
    chat.press(question, "Yes")
    await fake_telegram.wait_until(
        lambda: "Closed 2 positions" in fake_telegram.message(CHAT, question.message_id).plain
    )
    assert app.engine.open_positions() == []
    again = chat.press(question, "Yes")
    answer = await fake_telegram.wait_for_answer(again)
    assert "Already answered" in answer.text


async def test_limits_show_set_refuse_bad_input_and_reset(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    shown = await chat.ask("/limits", "Limits")
    for line in (
        "max_positions: 15",
        "daily_loss: 500 USDT",
        "position_size: 100 USDT",
        "min_confidence: 0.5",
        "leverage: 50x",
    ):
        assert line in shown.plain

    changed = await chat.ask("/limits max_positions 3", "max_positions changed")
    assert "max_positions: 3" in changed.plain
    assert app.engine.limits.max_open_positions == 3

    for bad in (
        "/limits max_positions -1",
        "/limits max_positions lots",
        "/limits bogus 1",
        "/limits leverage 1000",
    ):
        await chat.ask(bad, "Nothing changed")
    await chat.ask("/limits max_positions", "Usage: /limits")
    assert app.engine.limits.max_open_positions == 3
    assert app.engine.limits.leverage == 50

    await chat.ask("/limits daily_loss 250.5", "daily_loss changed")
    assert app.engine.limits.max_daily_loss_usdt == Decimal("250.5")
    reset = await chat.ask("/limits max_positions reset", "back to the strategy file")
    assert "max_positions: 15" in reset.plain
    assert app.engine.limits.max_open_positions == 15


async def test_trades_lists_the_last_closed_trades_and_refuses_a_bad_count(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/trades", "No closed trades yet")
    for bad in ("/trades 0", "/trades 101", "/trades x", "/trades 1 2"):
        await chat.ask(bad, "Usage: /trades [N]")

    await open_from_chat(chat, workdir, clock)
    await fake_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
    await chat.expect("Closed SOLUSDT")
    listed = await chat.ask("/trades 5", "Last 1 closed trade")
    assert "SOLUSDT long TP +" in listed.plain
    assert len(await app.engine.recent_trades(5)) == 1


async def test_unknown_commands_and_text_get_a_pointer_to_help(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/frobnicate", "Send /help")
    await chat.ask("hello", "Send /help")
    await chat.ask("/confirm maybe", "Usage: /confirm on or /confirm off (now off)")


async def test_an_unauthorised_chat_gets_nothing_and_changes_nothing(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.middlewares")
    app = await apps()
    chat = Chat(fake_telegram)
    question_owner = await chat.ask("/close all", "No open positions")

    for text in ("/start_trading", "/limits max_positions 1", "/confirm on", "secret words"):
        fake_telegram.push_message(STRANGER, text)
    query = fake_telegram.push_callback(STRANGER, question_owner.message_id, "ca1:yes:0")
    # The allowed chat's next command is served only after the stranger's updates were
    # taken from getUpdates; their handling is synchronous in the middleware.
    await chat.ask("/status", "Status")
    await fake_telegram.wait_until(lambda: len(caplog.records) >= 5)

    assert fake_telegram.sent(STRANGER) == []
    assert query not in {a.query_id for a in fake_telegram.callback_answers}
    assert not app.engine.trading_enabled
    assert app.engine.limits.max_open_positions == 15
    assert not app.engine.confirmations.enabled
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"unauthorised chat {STRANGER}" in logged
    assert "/start_trading" in logged
    assert "a button press" in logged
    assert "secret words" not in logged
    assert "max_positions 1" not in logged
    assert CHAT not in {r.args[1] for r in caplog.records if isinstance(r.args, tuple)}


async def test_status_shows_the_open_position_with_its_unrealised_pnl(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/start_trading", "Trading ON")
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY")
    opened = await chat.expect("Opened SOLUSDT long")
    assert "qty 26.3 @ 190.01" in opened.plain
    assert "SL 188.49 · TP 192.86" in opened.plain
    assert "margin 99.95 USDT · 50x" in opened.plain
    await fake_bybit.set_ticker("SOLUSDT", last="191.00", bid="190.99", ask="191.01")
    # (191.00 − 190.01) × 26.3 less both fees at the taker rate: +20.53 USDT
    async with asyncio.timeout(5):
        while "uPnL +20.53 USDT" not in (status := await chat.ask("/status", "Status")).plain:
            pass
    assert "Open positions: 1/15" in status.plain
    assert "SOLUSDT long 26.3 @ 190.01" in status.plain
    assert "SL 188.49 · TP 192.86 · uPnL +20.53 USDT" in status.plain


async def test_close_all_buttons_are_taken_away_when_they_expire(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/start_trading", "Trading ON")
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY")
    await chat.expect("Opened SOLUSDT")
    question = await chat.ask("/close all", "Close 1 open position at market?")
    assert question.reply_markup is not None
    clock.advance(timedelta(seconds=119))
    answered_in_time = await chat.ask("/close all", "Close 1 open position at market?")
    clock.advance(timedelta(seconds=2))  # the first question is 121 s old, the second 2 s
    await fake_telegram.wait_until(
        lambda: fake_telegram.message(CHAT, question.message_id).reply_markup is None
    )
    assert "Expired: nothing was closed" in fake_telegram.message(CHAT, question.message_id).plain
    assert fake_telegram.message(CHAT, answered_in_time.message_id).reply_markup is not None
    # Its button data pressed all the same (an old client): still nothing is closed.
    answer = await fake_telegram.wait_for_answer(chat.press(question, "Yes"))
    assert "expired" in answer.text
    assert len(app.engine.open_positions()) == 1
