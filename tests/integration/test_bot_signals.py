"""/signals: what became of each signal, as a trader checks it from a phone."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from bot.app import App
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import AppFactory, Chat, append_signal
from trader.clock import ManualClock


async def test_signals_lists_the_newest_with_their_outcomes(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/signals", "No signals seen yet.")
    await chat.ask("/start_trading", "Trading ON")
    log = workdir / "signals_log.csv"
    append_signal(log, clock.now(), "SOLUSDT", "BUY", signal_id="a")
    await chat.expect("Opened SOLUSDT long")
    append_signal(
        log, clock.now() + timedelta(seconds=1), "ETHUSDT", "BUY", confidence="0.1", signal_id="b"
    )
    append_signal(log, clock.now() + timedelta(seconds=2), "BTCUSDT", "SELL", signal_id="c")
    await chat.expect("Opened BTCUSDT short")

    listed = await chat.ask("/signals", "Last 3 signals")
    lines = listed.plain.splitlines()[1:]
    assert [line.split(" ", 2)[2] for line in lines] == [
        "BTCUSDT SELL: opened",
        "ETHUSDT BUY: filtered:low_confidence",
        "SOLUSDT BUY: opened",
    ]
    two = await chat.ask("/signals 2", "Last 2 signals")
    assert "SOLUSDT" not in two.plain
    await chat.ask("/signals 0", "Usage: /signals [N]")
    await chat.ask("/signals lots", "Usage: /signals [N]")


async def test_the_report_counts_the_signals_seen_since_the_last_one_by_outcome(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/start_trading", "Trading ON")
    log = workdir / "signals_log.csv"
    append_signal(log, clock.now(), "SOLUSDT", "BUY", signal_id="a")
    await chat.expect("Opened SOLUSDT long")
    for n, symbol in enumerate(("ETHUSDT", "XRPUSDT"), start=1):
        at = clock.now() + timedelta(seconds=n)
        append_signal(log, at, symbol, "BUY", confidence="0.1", signal_id=symbol)
    await decided(app, ["ETHUSDT", "XRPUSDT"])
    report = await chat.ask("/report", "Report")
    assert "(3): 2 filtered:low_confidence · 1 opened" in report.plain

    clock.advance(timedelta(seconds=5))
    mark = chat.mark()
    await app.reporter.send_scheduled()  # a scheduled report starts the count anew
    scheduled = await chat.expect("Report", after=mark)
    assert "(3): 2 filtered:low_confidence · 1 opened" in scheduled.plain
    again = await chat.ask("/report", "Report")
    assert again.plain.splitlines()[-1].endswith(": none")


async def decided(app: App, signal_ids: list[str]) -> None:
    """Wait (with a deadline) until the signals are stored with their outcome."""
    async with asyncio.timeout(5):
        while True:
            stored = [await app.engine.repo.get_signal(i) for i in signal_ids]
            if all(s is not None and s.outcome for s in stored):
                return
            await asyncio.sleep(0.01)


async def test_status_shows_the_last_signal_and_a_missing_log_is_said(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    log = workdir / "signals_log.csv"
    header = log.read_text()
    log.unlink()
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.expect("The signal log")  # ... is not there: waiting for it
    status = await chat.ask("/status", "Status")
    assert "Last signal: none yet" in status.plain
    log.write_text(header)
    append_signal(log, clock.now() - timedelta(minutes=3), "SOLUSDT", "BUY", signal_id="late")
    await decided(app, ["late"])
    status = await chat.ask("/status", "Status")
    assert "(3 min ago)" in status.plain


async def test_a_signal_far_from_the_market_is_rejected_price_moved(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    strategy = json.loads((workdir / "strategy.json").read_text())
    del strategy["max_entry_deviation_pct"]  # the default: 1% from the market
    (workdir / "strategy.json").write_text(json.dumps(strategy))
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/start_trading", "Trading ON")
    # The fake's SOLUSDT trades at 150: a row written at 100 is not that market any more.
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="far")
    await chat.expect("Signal not traded: SOLUSDT (price moved)")
    await decided(app, ["far"])
    stored = await app.engine.repo.get_signal("far")
    assert stored is not None
    assert stored.outcome == "rejected:price_moved"
    assert app.engine.open_positions() == []
