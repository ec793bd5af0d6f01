"""Notifications through the stored outbox: in order, retried through a 502 period and a
429 with retry_after, kept across a restart, split at 4096 characters; and the report.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import (
    CHAT,
    LIVE_KEY,
    LIVE_SECRET,
    AppFactory,
    Chat,
    append_signal,
    open_from_chat,
    settings_for,
)
from trader.clock import ManualClock
from trader.models import ClosedTrade, CloseReason, InvalidSignal, Position, Side
from trader.runtime import build_runtime

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_a_502_period_delays_notifications_in_order_and_never_stops_trading(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/start_trading", "Trading ON")
    mark = chat.mark()
    fake_telegram.fail("sendMessage", 502)

    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY")
    await fake_telegram.wait_until(lambda: len(app.engine.open_positions()) == 1)
    await fake_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
    await fake_telegram.wait_until(lambda: app.engine.open_positions() == [])
    # Retried with backoff meanwhile, in order: the oldest message is the one retried.
    await fake_telegram.wait_until(
        lambda: len([c for c in fake_telegram.calls("sendMessage") if not c.ok]) >= 3
    )
    assert chat.mark() == mark  # nothing got through yet, and trading went on

    fake_telegram.clear_failures()
    closed = await chat.expect("Closed SOLUSDT", after=mark)
    opened = await chat.expect("Opened SOLUSDT", after=mark)
    assert opened.message_id < closed.message_id  # the order of events is kept
    assert [m.plain.split("\n")[0].split(" ")[1] for m in fake_telegram.sent(CHAT)[mark:]] == [
        "Opened",
        "Closed",
    ]


async def test_a_429_is_retried_after_its_retry_after(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/start_trading", "Trading ON")
    fake_telegram.fail("sendMessage", 429, times=1, retry_after=1)
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY")
    await chat.expect("Opened SOLUSDT")
    calls = [c for c in fake_telegram.calls("sendMessage") if "Opened" in str(c.params)]
    refused, delivered = calls[0], calls[-1]
    assert not refused.ok
    assert delivered.ok
    assert delivered.at - refused.at >= 1.0
    assert len(app.engine.open_positions()) == 1


async def test_undelivered_notifications_survive_a_restart(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/start_trading", "Trading ON")
    fake_telegram.fail("sendMessage", 502)
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY")
    await fake_telegram.wait_until(lambda: len(app.engine.open_positions()) == 1)
    await app.stop()  # the flush at shutdown fails too: the message stays stored

    fake_telegram.clear_failures()
    mark = chat.mark()
    await apps()
    opened = await chat.expect("Opened SOLUSDT", after=mark)
    stopped = await chat.expect("Engine stopped", after=mark)
    started = await chat.expect("Engine started", after=mark)
    assert opened.message_id < stopped.message_id < started.message_id


async def test_long_replies_are_split_at_telegrams_limit(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    opened = datetime(2025, 10, 19, tzinfo=UTC)
    for i in range(100):
        trade = ClosedTrade(
            signal_id=f"t{i}",
            symbol=f"COIN{i}USDT",
            side=Side.SELL,
            qty=Decimal("12.5"),
            entry_price=Decimal("1.2345"),
            exit_price=Decimal("1.2222"),
            leverage=50,
            margin=Decimal("0.3"),
            entry_fee=Decimal("0.01"),
            exit_fee=Decimal("0.01"),
            gross_pnl=Decimal("0.15"),
            net_pnl=Decimal("0.13"),
            reason=CloseReason.TAKE_PROFIT,
            opened_at=opened,
            closed_at=opened + timedelta(minutes=i),
        )
        position = await app.runtime.repo.add_position(_position_of(trade))
        assert position.id is not None
        await app.runtime.repo.close_position(position.id, trade)
    mark = chat.say("/trades 100")
    await chat.expect("COIN0USDT", after=mark)
    parts = fake_telegram.sent(CHAT)[mark:]
    assert len(parts) >= 2
    assert all(len(p.text) <= 4096 for p in parts)
    assert "COIN99USDT" in parts[0].plain


async def test_report_sends_the_numbers_and_an_equity_chart_after_a_closed_trade(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await apps()
    chat = Chat(fake_telegram)
    report = await chat.ask("/report", "Report")
    assert "Closed trades: 0" in report.plain
    assert not [m for m in fake_telegram.sent(CHAT) if m.kind == "photo"]  # no trades, no chart

    await open_from_chat(chat, workdir, clock)
    await fake_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
    await chat.expect("Closed SOLUSDT")
    mark = chat.say("/report")
    report = await chat.expect("Report", after=mark)
    assert "Closed trades: 1 · win rate 100.0%" in report.plain
    photo = await chat.expect("Equity after 1 closed trade:", after=mark)
    assert photo.kind == "photo"
    assert photo.photo is not None
    assert photo.photo.startswith(PNG_SIGNATURE)
    if path := os.environ.get("REPORT_PNG_OUT"):
        await asyncio.to_thread(Path(path).write_bytes, photo.photo)


async def test_the_scheduled_report_comes_through_the_outbox(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    app = await apps(report_interval_minutes=60)
    chat = Chat(fake_telegram)
    mark = chat.mark()
    await app.reporter.send_scheduled()
    report = await chat.expect("Report", after=mark)
    assert "Balance: 1,000.00 USDT" in report.plain
    assert app.scheduler.running
    assert app.scheduler.get_job("report") is not None


async def test_the_composition_root_gives_the_database_every_secret_to_mask(
    live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    token = "7012345678:AAHcompositionRootTestToken_0123456"
    settings = settings_for(
        workdir,
        live_bybit,
        telegram_bot_token=token,
        trading_mode="live",
        bybit_api_key=LIVE_KEY,
        bybit_api_secret=LIVE_SECRET,
    )
    runtime = await build_runtime(settings, clock=clock)
    try:
        leak = (
            f"POST https://api.telegram.org/bot{token}/sendMessage failed;"
            f" key {LIVE_KEY}, secret {LIVE_SECRET}"
        )
        await runtime.repo.record_signal(InvalidSignal("leak", leak), clock.now())
        with sqlite3.connect(runtime.repo.database.path) as conn:
            (outcome,) = conn.execute("SELECT outcome FROM signals WHERE id = 'leak'").fetchone()
    finally:
        await runtime.repo.close()
    assert (
        outcome
        == "invalid:POST https://api.telegram.org/bot***/sendMessage failed; key ***,"
        + (" secret ***")
    )


def _position_of(trade: ClosedTrade) -> Position:
    return Position(
        signal_id=trade.signal_id,
        symbol=trade.symbol,
        side=trade.side,
        qty=trade.qty,
        entry_price=trade.entry_price,
        leverage=trade.leverage,
        margin=trade.margin,
        stop_loss=Decimal("1.3"),
        take_profit=Decimal("1.1"),
        entry_fee=trade.entry_fee,
        opened_at=trade.opened_at,
        expires_at=trade.opened_at + timedelta(minutes=15),
    )
