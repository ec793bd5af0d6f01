"""Bybit unreachable at start-up: the bot keeps running, answers /status, says so once, and
trades once Bybit answers."""

from __future__ import annotations

import asyncio
import time

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import LIVE_KEY, LIVE_SECRET, AppFactory, Chat

SERVER_TIME = "/v5/market/time"


async def test_the_bot_waits_for_bybit_and_answers_status_meanwhile(
    apps: AppFactory, fake_telegram: FakeTelegram, live_bybit: FakeBybit
) -> None:
    live_bybit.fail_next(SERVER_TIME, http_status=502, times=1_000_000)  # Bybit is down
    chat = Chat(fake_telegram)
    starting = asyncio.create_task(
        apps(trading_mode="live", bybit_api_key=LIVE_KEY, bybit_api_secret=LIVE_SECRET)
    )
    await chat.expect("Bybit does not answer", timeout=15)
    asked = time.monotonic()
    status = await chat.ask("/status", "Status")
    assert time.monotonic() - asked < 1.0  # answered at once, not after Bybit's retries
    assert "Balance: unknown (Bybit is not answering)" in status.plain
    assert not starting.done()  # still waiting for Bybit, not exited

    live_bybit.clear_faults()  # Bybit is back
    await chat.expect("Bybit answers: starting to trade", timeout=15)
    await chat.expect("Engine started", timeout=15)
    app = await asyncio.wait_for(starting, 15)
    assert app.engine.exchange.mode == "live"
    assert len([m for m in fake_telegram.sent() if "does not answer" in m.plain]) == 1
