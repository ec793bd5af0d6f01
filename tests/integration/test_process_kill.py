"""``python -m bot`` in live mode killed with SIGKILL between TP1 and the rest of a position
with two take-profits and breakeven after TP1, then started again: the plan is found as it
was (TP1 filled, the stop at breakeven), nothing is sent twice, and the rest closes on TP2
as one trade with its parts. The real process, pybit and aiogram, against the fakes."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import LIVE_KEY, LIVE_SECRET, append_signal, edit_strategy
from tests.integration.test_process import start_bot

CREATE, TRADING_STOP = "/v5/order/create", "/v5/position/trading-stop"
BREAKEVEN = Decimal("190.22")  # 190.01 × 1.00055 ÷ 0.99945, up to the tick


async def start(
    workdir: Path, bybit: FakeBybit, telegram: FakeTelegram
) -> asyncio.subprocess.Process:
    proc = await start_bot(
        workdir,
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_ALLOWED_CHAT_IDS="111",
        TELEGRAM_API_URL=telegram.url,
        TRADING_MODE="live",
        BYBIT_API_KEY=LIVE_KEY,
        BYBIT_API_SECRET=LIVE_SECRET,
        BYBIT_REST_URL=bybit.url,
        BYBIT_WS_PUBLIC_URL=bybit.ws_public_url,
        BYBIT_WS_PRIVATE_URL=bybit.ws_private_url,
        SIGNALS_PATH=str(workdir / "signals_log.csv"),
        STRATEGY_PATH=str(workdir / "strategy.json"),
        LOG_LEVEL="INFO",
    )
    return proc


def count(bybit: FakeBybit, path: str) -> int:
    return len(bybit.requests_to(path))


async def test_a_kill_9_between_tp1_and_the_rest_resumes_the_plan_and_sends_nothing_twice(
    workdir: Path, live_bybit: FakeBybit, fake_telegram: FakeTelegram
) -> None:
    edit_strategy(
        workdir,
        take_profits=[{"pct": 40, "size": 50}, {"pct": 75, "size": 50}],
        breakeven_after_tp=1,
    )
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    proc = await start(workdir, live_bybit, fake_telegram)
    try:
        await fake_telegram.wait_for_message(111, "Engine started", timeout=30)
        fake_telegram.push_message(111, "/start_trading")
        await fake_telegram.wait_for_message(111, "Trading ON", timeout=10)
        append_signal(workdir / "signals_log.csv", datetime.now(UTC), "SOLUSDT", "BUY")
        await fake_telegram.wait_for_message(111, "Opened SOLUSDT", timeout=15)
        await live_bybit.wait_until(lambda: len(live_bybit.partial_orders("SOLUSDT")) == 2, 10)

        # TP1 fills on Bybit; the bot books it and moves the stop to breakeven.
        await live_bybit.set_ticker("SOLUSDT", "191.60", bid="191.59", ask="191.61")
        await fake_telegram.wait_for_message(111, "Partly closed SOLUSDT", timeout=10)

        def moved() -> bool:
            held = live_bybit.position("SOLUSDT")
            return held is not None and held.stop_loss == BREAKEVEN

        await live_bybit.wait_until(moved, 10)
        sent = (count(live_bybit, CREATE), count(live_bybit, TRADING_STOP))
        assert sent == (1, 3)  # the entry; 2 TPs and the move
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    mark = len(fake_telegram.sent(111))
    proc = await start(workdir, live_bybit, fake_telegram)
    try:
        # Asked at once: "starting", or the state read back; never an empty book.
        fake_telegram.push_message(111, "/status")

        def answer() -> str | None:
            texts = [m.text for m in fake_telegram.sent(111)[mark:]]
            return next((t for t in texts if "Starting" in t or "Status" in t), None)

        await fake_telegram.wait_until(lambda: answer() is not None, 30)
        assert "Open positions: none" not in (answer() or "")
        started = "Engine started · live mode · trading on · 1 open position"
        await fake_telegram.wait_for_message(111, started, timeout=30)
        fake_telegram.push_message(111, "/status")
        status = await fake_telegram.wait_for_message(111, "moved to breakeven", timeout=30)
        assert "TP1 191.53 × 13.1 ✓" in status.text
        await live_bybit.set_ticker("SOLUSDT", "192.90", bid="192.89", ask="192.91")
        closed = await fake_telegram.wait_for_message(111, "Closed SOLUSDT", timeout=10)
        assert "the trade, 2 parts" in closed.text
        bodies = [r.body for r in live_bybit.requests_to(TRADING_STOP)]
        assert (count(live_bybit, CREATE), count(live_bybit, TRADING_STOP)) == sent, "\n".join(
            bodies
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, rest = await proc.communicate()
    assert "Traceback" not in rest.decode()
