"""``make bench``: ``/profit``, ``/daily`` and ``/performance`` with 100k closed trades stored
(a year's worth, six symbols), TIMEZONE Asia/Dubai, paper mode against the fake Bybit.

Measures each command's read and render (``engine.read_models`` → ``bot.render``), as the
handler runs them: the start-up count of the whole history (the app runs it in the background
once started, so that the first command answers at once), and then samples with one trade
booked before each round, so that every sample also reads the trades booked since the one
before; last, a command after a trade booked late.
``python -m benchmarks.dashboard`` runs it alone.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from benchmarks.common import (
    bench_settings,
    percentile,
    scratch,
    spread,
    store_trades,
    whole_trade_row,
)
from benchmarks.reports import history
from bot import render
from storage.codec import TRADE_INSERT
from tests.fakes.bybit import FakeBybit
from trader.models import ClosedTrade
from trader.read_models import ReadModels
from trader.runtime import build_runtime

TRADES = 100_000
SAMPLES = 100
ZONE = "Asia/Dubai"
TARGET_MS = 100.0

Reply = Callable[[ReadModels, ZoneInfo], Awaitable[str]]


async def _profit(models: ReadModels, zone: ZoneInfo) -> str:
    return render.profit_text(await models.profit(zone))


async def _profit_month(models: ReadModels, zone: ZoneInfo) -> str:
    return render.profit_text(await models.profit(zone, 30))


async def _daily(models: ReadModels, zone: ZoneInfo) -> str:
    return render.daily_text(await models.daily(zone, 7))


async def _daily_month(models: ReadModels, zone: ZoneInfo) -> str:
    return render.daily_text(await models.daily(zone, 30))


async def _daily_quarter(models: ReadModels, zone: ZoneInfo) -> str:
    return render.daily_text(await models.daily(zone, 90))


async def _performance(models: ReadModels, zone: ZoneInfo) -> str:
    return render.performance_text(await models.symbol_performance(zone))


COMMANDS: list[tuple[str, Reply]] = [
    ("/profit", _profit),
    ("/profit 30", _profit_month),
    ("/daily", _daily),
    ("/daily 30", _daily_month),
    ("/daily 90", _daily_quarter),
    ("/performance", _performance),
]


async def measure(work: Path, samples: int) -> tuple[float, float, dict[str, list[float]]]:
    """The start-up count's ms, each command's ms over ``samples`` rounds, and the ms of a
    command after a trade booked late."""
    async with FakeBybit() as bybit:
        settings = bench_settings(work, bybit, timezone=ZONE)
        runtime = await build_runtime(settings)
        await runtime.start()
        try:
            engine, zone = runtime.engine, settings.timezone
            await engine.performance()  # the start-up count of the reports is done: not ours
            # As the app does once started: the views count the history in the background.
            started = time.perf_counter()
            engine.count_views(zone)
            await engine.wait_idle()
            first_ms = (time.perf_counter() - started) * 1000
            figures: dict[str, list[float]] = {name: [] for name, _ in COMMANDS}
            now = datetime.now(UTC)
            for i in range(samples):
                booked = _closing(next(history(1, now, seed=i)), now + timedelta(seconds=i))
                async with runtime.repo.database.transaction() as conn:
                    await conn.execute(TRADE_INSERT, whole_trade_row(booked, TRADES + 1 + i))
                for name, reply in COMMANDS:
                    started = time.perf_counter()
                    text = await reply(engine.read_models, zone)
                    figures[name].append((time.perf_counter() - started) * 1000)
                    assert text
            # A trade booked late that closed before the last one counted (an exit found by
            # reconciliation): the next command counts the whole history again.
            late = _closing(next(history(1, now, seed=-1)), now - timedelta(days=1))
            async with runtime.repo.database.transaction() as conn:
                await conn.execute(TRADE_INSERT, whole_trade_row(late, TRADES + 1 + samples))
            started = time.perf_counter()
            await _profit(engine.read_models, zone)
            recount_ms = (time.perf_counter() - started) * 1000
            return first_ms, recount_ms, figures
        finally:
            await runtime.stop()


def _closing(trade: ClosedTrade, at: datetime) -> ClosedTrade:
    """``trade`` closed at ``at``, open as long as it was."""
    return replace(trade, opened_at=at - (trade.closed_at - trade.opened_at), closed_at=at)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scratch(work, {"parameters": {"leverage": 10, "sl": 20, "tp": 40}})
        now = datetime.now(UTC).replace(microsecond=0)
        rows = (whole_trade_row(t, n) for n, t in enumerate(history(TRADES, now), 1))
        asyncio.run(store_trades(work / "data" / "paper.db", rows))
        first_ms, recount_ms, figures = asyncio.run(measure(work, SAMPLES))
    print(
        f"/profit, /daily, /performance with {TRADES:,} closed trades, read + render "
        f"(TIMEZONE {ZONE}, one trade booked before each round):"
    )
    print(
        f"  start-up count of the whole history (in the background, once): {first_ms:.0f} ms; "
        "every command after it is timed below"
    )
    for name, values in figures.items():
        target = f"target p95 <= {TARGET_MS:.0f} ms"
        print(f"  {name}: {spread(values)}   ({len(values)} samples; {target})")
    print(
        f"  after a trade booked late that closed earlier (all counted again): {recount_ms:.0f} ms"
    )
    worst = max(percentile(values, 95) for values in figures.values())
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
