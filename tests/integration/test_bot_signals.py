"""/signals: what became of each signal, as a trader checks it from a phone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

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
