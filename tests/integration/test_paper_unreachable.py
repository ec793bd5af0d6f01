"""Paper mode with a position open and Bybit's market data unreachable at start-up: the bot
keeps running, answers /status, says so once, and goes on once Bybit answers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import AppFactory, Chat, open_from_chat
from trader.clock import ManualClock

MARKET_PATHS = ("/v5/market/instruments-info", "/v5/market/tickers", "/v5/market/time")


async def test_paper_with_a_position_waits_for_bybit_and_answers_status_meanwhile(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    chat = Chat(fake_telegram)
    first = await apps()
    await open_from_chat(chat, workdir, clock)
    await first.stop()

    for path in MARKET_PATHS:  # Bybit is down
        fake_bybit.fail_next(path, http_status=502, times=1_000_000)
    mark = chat.mark()
    starting = asyncio.create_task(apps())
    told = await chat.expect("Bybit does not answer", after=mark, timeout=15)
    assert "Paper positions' stop-loss and take-profit are checked" in told.plain
    asked = time.monotonic()
    status = await chat.ask("/status", "Status")
    assert time.monotonic() - asked < 2.0  # at once, not after Bybit's retries (3.5 s and more)
    assert "SOLUSDT" in status.plain  # the position is known from the database
    assert not starting.done()  # still waiting for Bybit, not exited

    fake_bybit.clear_faults()  # Bybit is back
    await chat.expect("Bybit answers: starting to trade", after=mark, timeout=15)
    await chat.expect("Engine started", after=mark, timeout=15)
    app = await asyncio.wait_for(starting, 15)
    assert [p.symbol for p in app.engine.open_positions()] == ["SOLUSDT"]
    assert len([m for m in fake_telegram.sent() if "does not answer" in m.plain]) == 1
