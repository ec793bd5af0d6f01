"""Confirmation mode in chat: ✅ Open and ❌ Skip, the timeout, second presses, foreign
messages, the risk check at the press, and questions that outlive a restart.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from bot.app import App
from tests.fakes.telegram import FakeTelegram, SentMessage
from tests.integration.support import CHAT, AppFactory, Chat, append_signal
from trader.clock import ManualClock


async def ask_about_a_signal(
    app: App, chat: Chat, workdir: Path, clock: ManualClock, symbol: str = "SOLUSDT"
) -> SentMessage:
    """Confirmation mode on, trading on, one signal appended: its question."""
    if not app.engine.confirmations.enabled:
        await chat.ask("/confirm on", "Confirmation mode ON")
    if not app.engine.trading_enabled:
        await chat.ask("/start_trading", "after your confirmation")
    mark = chat.mark()
    append_signal(workdir / "signals_log.csv", clock.now(), symbol, "BUY", signal_id=symbol)
    return await chat.expect(f"Trade this signal? {symbol} long", after=mark)


async def outcome(app: App, signal_id: str) -> str | None:
    stored = await app.runtime.repo.get_signal(signal_id)
    return stored.outcome if stored else None


async def test_open_trades_the_signal_and_the_question_says_so(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    question = await ask_about_a_signal(app, chat, workdir, clock)
    assert "confidence 0.8" in question.plain
    assert "margin 100.00 USDT · 50x" in question.plain
    deadline = (clock.now() + timedelta(seconds=60)).strftime("%H:%M:%S")
    assert f"Answer within 60 s (by {deadline} UTC)" in question.plain
    assert app.engine.open_positions() == []  # nothing is traded before the answer

    answer = await fake_telegram.wait_for_answer(chat.press(question, "Open"))
    assert answer.text == "Opening SOLUSDT…"
    opened = await chat.expect("Opened SOLUSDT long")
    # What was approved is what was traded: the market has not moved in between.
    [position] = app.engine.open_positions()
    tick = Decimal("0.01")  # SOLUSDT's tick on the fake, as on Bybit
    asked = (
        f"qty {position.qty.normalize():f} at ≈ {position.entry_price.quantize(tick)}",
        f"SL {position.stop_loss.quantize(tick)} · TP {position.take_profit.quantize(tick)}",
    )
    for figure in asked:
        assert figure in question.plain, (figure, question.plain)
    assert f"SL {position.stop_loss.quantize(tick)}" in opened.plain
    await fake_telegram.wait_until(
        lambda: "Approved" in fake_telegram.message(CHAT, question.message_id).plain
    )
    assert fake_telegram.message(CHAT, question.message_id).reply_markup is None
    assert await outcome(app, "SOLUSDT") == "opened"


async def test_skip_records_declined_and_trades_nothing(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    question = await ask_about_a_signal(app, chat, workdir, clock)
    answer = await fake_telegram.wait_for_answer(chat.press(question, "Skip"))
    assert answer.text == "Skipped SOLUSDT."
    await fake_telegram.wait_until(
        lambda: "Skipped" in fake_telegram.message(CHAT, question.message_id).plain
    )
    assert await outcome(app, "SOLUSDT") == "declined"
    assert app.engine.open_positions() == []


async def test_no_answer_expires_the_question_and_a_late_press_is_told_why(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    question = await ask_about_a_signal(app, chat, workdir, clock)
    clock.advance(timedelta(seconds=61))  # confirm_timeout_seconds is 60
    await fake_telegram.wait_until(
        lambda: "Expired: not traded" in fake_telegram.message(CHAT, question.message_id).plain
    )
    assert await outcome(app, "SOLUSDT") == "expired"

    answer = await fake_telegram.wait_for_answer(chat.press(question, "Open"))
    assert "expired" in answer.text
    assert answer.show_alert
    assert app.engine.open_positions() == []


async def test_a_second_press_does_nothing_and_says_why(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    question = await ask_about_a_signal(app, chat, workdir, clock)
    first = chat.press(question, "Open")
    second = chat.press(question, "Skip")
    answers = [
        await fake_telegram.wait_for_answer(first),
        await fake_telegram.wait_for_answer(second),
    ]
    assert sorted(a.text for a in answers) == [
        "Already answered (approved); nothing changed.",
        "Opening SOLUSDT…",
    ]
    await chat.expect("Opened SOLUSDT")
    third = await fake_telegram.wait_for_answer(chat.press(question, "Open"))
    assert third.text == "Already answered (approved); nothing changed."
    assert len(app.engine.open_positions()) == 1
    assert await outcome(app, "SOLUSDT") == "opened"


async def test_a_press_on_a_foreign_message_does_nothing(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    question = await ask_about_a_signal(app, chat, workdir, clock)
    other = await chat.ask("/status", "Status")
    data = question.reply_markup["inline_keyboard"][0][0]["callback_data"]  # type: ignore[index]
    answer = await fake_telegram.wait_for_answer(
        fake_telegram.push_callback(CHAT, other.message_id, data)
    )
    assert answer.text == "This button is not for a pending trade; nothing changed."
    forged = await fake_telegram.wait_for_answer(
        fake_telegram.push_callback(CHAT, question.message_id, "td1:open:0123456789abcdef0123")
    )
    assert forged.text == "This button is not for a pending trade; nothing changed."
    assert app.engine.open_positions() == []
    assert await outcome(app, "SOLUSDT") is None  # still waiting for a real answer


async def test_open_runs_the_risk_checks_at_the_press(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/limits max_positions 1", "max_positions changed")
    first = await ask_about_a_signal(app, chat, workdir, clock, "SOLUSDT")
    second = await ask_about_a_signal(app, chat, workdir, clock, "BTCUSDT")
    await fake_telegram.wait_for_answer(chat.press(first, "Open"))
    await chat.expect("Opened SOLUSDT")

    answer = await fake_telegram.wait_for_answer(chat.press(second, "Open"))
    assert answer.text == "Not opened: max open positions."
    assert answer.show_alert
    assert await outcome(app, "BTCUSDT") == "rejected:max_open_positions"
    await fake_telegram.wait_until(
        lambda: (
            "Approved, but not opened: max open positions"
            in fake_telegram.message(CHAT, second.message_id).plain
        )
    )
    assert [p.symbol for p in app.engine.open_positions()] == ["SOLUSDT"]


async def test_questions_survive_a_restart_and_are_answered_or_expired_once(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    kept = await ask_about_a_signal(app, chat, workdir, clock, "SOLUSDT")
    clock.advance(timedelta(seconds=30))
    late = await ask_about_a_signal(app, chat, workdir, clock, "BTCUSDT")
    await app.stop()

    clock.advance(timedelta(seconds=40))  # SOLUSDT's question is past its 60 s; BTCUSDT's not
    app = await apps()
    await fake_telegram.wait_until(
        lambda: "Expired" in fake_telegram.message(CHAT, kept.message_id).plain
    )
    assert await outcome(app, "SOLUSDT") == "expired"
    answer = await fake_telegram.wait_for_answer(chat.press(late, "Open"))
    assert answer.text == "Opening BTCUSDT…"
    await chat.expect("Opened BTCUSDT")
    assert [p.symbol for p in app.engine.open_positions()] == ["BTCUSDT"]
    assert await outcome(app, "BTCUSDT") == "opened"


async def test_the_question_is_refused_when_the_market_has_moved_from_the_signal(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    """The question is asked with the market's figures; a signal whose entry is far from
    the market is not asked about at all."""
    strategy = json.loads((workdir / "strategy.json").read_text())
    del strategy["max_entry_deviation_pct"]  # the default: 1% from the market
    (workdir / "strategy.json").write_text(json.dumps(strategy))
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/confirm on", "Confirmation mode ON")
    await chat.ask("/start_trading", "after your confirmation")
    mark = chat.mark()
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="far")
    # The fake's SOLUSDT trades at 150: a row written at 100 is not that market any more.
    await chat.expect("Signal not traded: SOLUSDT (price moved)", after=mark)
    assert await outcome(app, "far") == "rejected:price_moved"
    assert not [m for m in fake_telegram.sent(CHAT) if "Trade this signal" in m.plain]


async def test_the_deadline_is_shown_in_the_traders_zone(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps(timezone="Asia/Dubai")
    chat = Chat(fake_telegram)
    question = await ask_about_a_signal(app, chat, workdir, clock)
    local = (clock.now() + timedelta(seconds=60) + timedelta(hours=4)).strftime("%H:%M:%S")
    assert f"(by {local} UTC+4)" in question.plain


async def test_a_coin_excluded_after_the_question_is_refused_at_the_press(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    question = await ask_about_a_signal(app, chat, workdir, clock)
    await chat.ask("/coins exclude sol", "Excluded")
    chat.press(question, "Open")
    await fake_telegram.wait_until(
        lambda: "excluded coin" in fake_telegram.message(CHAT, question.message_id).plain
    )
    assert await outcome(app, "SOLUSDT") == "rejected:excluded_coin"
    assert app.engine.open_positions() == []
