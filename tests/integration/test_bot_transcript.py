"""The trader's whole loop in one chat, recorded by the fake Bot API server: start trading,
a signal, the fill, /status, a take-profit, the net PnL, and the report with its chart.

Set TRANSCRIPT_OUT=path to keep the transcript (the closing note of issue 3 quotes it).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import AppFactory, Chat, append_signal
from trader.clock import ManualClock


async def test_a_trade_from_signal_to_report_reads_well_in_chat(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await apps()
    chat = Chat(fake_telegram)
    await chat.expect("Engine started")
    await chat.ask("/start_trading", "Trading ON")

    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY")
    opened = await chat.expect("Opened SOLUSDT long")
    status = await chat.ask("/status", "Status")
    assert "SOLUSDT long 26.3 @ 190.01" in status.plain

    await fake_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
    closed = await chat.expect("Closed SOLUSDT long")
    # (192.88 − 190.01) × 26.3 = 75.481 gross; fees 0.00055 × 26.3 × (190.01 + 192.88)
    # = 5.5383 → net +69.94 USDT
    assert "net PnL +69.94 USDT" in closed.plain
    mark = chat.say("/report")
    await chat.expect("Report", after=mark)
    chart = await chat.expect("Equity after 1 closed trade:", after=mark)
    assert chart.kind == "photo"

    transcript = fake_telegram.transcript()
    for needle in (
        "/start_trading",
        opened.plain.split("\n")[0],
        "/status",
        "net PnL +69.94 USDT",
        "/report",
        "photo",
    ):
        assert needle in transcript
    if path := os.environ.get("TRANSCRIPT_OUT"):
        await asyncio.to_thread(Path(path).write_text, transcript)


async def test_a_paper_session_with_a_filtered_signal_reads_well_in_chat(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    """/start_trading, three signals of which one is filtered, /signals, a close, /report."""
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await fake_bybit.set_ticker("ETHUSDT", last="3400.00", bid="3399.99", ask="3400.01")
    await apps()
    chat = Chat(fake_telegram)
    await chat.expect("Engine started")
    await chat.ask("/start_trading", "Trading ON")
    log = workdir / "signals_log.csv"
    append_signal(log, clock.now(), "SOLUSDT", "BUY", signal_id="sol-1")
    await chat.expect("Opened SOLUSDT long")
    append_signal(log, clock.now(), "ETHUSDT", "BUY", confidence="0.2", signal_id="eth-1")
    append_signal(log, clock.now(), "ETHUSDT", "SELL", signal_id="eth-2")
    await chat.expect("Opened ETHUSDT short")
    signals = await chat.ask("/signals", "Last 3 signals")
    assert "filtered:low_confidence" in signals.plain
    await chat.ask("/close sol", "Closed SOLUSDT long")
    mark = chat.say("/report")
    report = await chat.expect("Report", after=mark)
    assert "2 opened · 1 filtered:low_confidence" in report.plain
    await chat.expect("Equity after 1 closed trade:", after=mark)
    transcript = fake_telegram.transcript()
    for needle in ("/start_trading", "/signals", "/close sol", "/report", "photo"):
        assert needle in transcript
    if path := os.environ.get("SESSION_TRANSCRIPT_OUT"):
        await asyncio.to_thread(Path(path).write_text, transcript)
