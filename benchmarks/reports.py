"""``make bench``, reports at the scale of a year: 100k closed trades stored, then the bot
started against the fake Telegram and the fake Bybit (real aiogram and pybit, paper mode).

Measures the time to ready (``build_app`` → "Engine started" sent) and the RSS then; ``/status``
and ``/report`` (update offered → reply, resp. chart, reaching the fake Bot API); the worst
event-loop stall during the reports; a signal's append → position opened, alone and while a
report is being built; the process's peak RSS. The bot runs in a child process of its own, so
that its RSS is its own and not the trade generator's. Uses only public APIs that predate
issue 11, so ``PYTHONPATH=/work/before python -m benchmarks.reports`` measures the code before
it. ``BENCH_REPORT_CHART=<path>`` saves the last chart sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.common import (
    SYMBOLS,
    LoopLag,
    answer_ms,
    append,
    bench_settings,
    buy_row,
    percentile,
    scratch,
    store_trades,
    watch_opened,
    whole_trade_row,
)
from storage.export import rewrite_trades
from trader.models import ClosedTrade, CloseReason, Side

TRADES = 100_000
EIGHT = Decimal("0.00000001")


def history(count: int, now: datetime, *, seed: int = 11) -> Iterator[ClosedTrade]:
    """``count`` closed trades over the year before ``now``, oldest first: a random walk with
    a drift, 8-decimal fees and PnL as Bybit books them."""
    rng = random.Random(seed)
    start = now - timedelta(days=365)
    step = timedelta(days=365) / count
    for i in range(count):
        closed = start + step * i
        net = Decimal(rng.gauss(0.05, 6.0)).quantize(EIGHT)
        entry_fee = Decimal(rng.uniform(0.01, 0.2)).quantize(EIGHT)
        exit_fee = Decimal(rng.uniform(0.01, 0.2)).quantize(EIGHT)
        yield ClosedTrade(
            signal_id=f"hist-{i}",
            symbol=SYMBOLS[i % len(SYMBOLS)],
            side=Side.BUY if i % 2 else Side.SELL,
            qty=Decimal("1.5"),
            entry_price=Decimal("150.01"),
            exit_price=Decimal("151.20"),
            leverage=10,
            margin=Decimal("22.501"),
            entry_fee=entry_fee,
            exit_fee=exit_fee,
            gross_pnl=net + entry_fee + exit_fee,
            net_pnl=net,
            reason=CloseReason.TTL,
            opened_at=closed - timedelta(minutes=15),
            closed_at=closed,
        )


async def store_history(data_dir: Path, count: int) -> None:
    """The trades in the database, and ``trades_log.csv`` matching it (as a bot leaves it)."""
    now = datetime.now(UTC).replace(microsecond=0)
    await store_trades(
        data_dir / "paper.db", (whole_trade_row(t, n) for n, t in enumerate(history(count, now), 1))
    )
    rewrite_trades(data_dir / "trades_log.csv", history(count, now))


def peak_rss_mb() -> float:
    """This process's own peak resident memory (``VmHWM``): ``ru_maxrss`` of a child started
    from a big parent reports the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """The process's resident set now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(
    work: Path, launched: float, *, reports: int, statuses: int, signals: int
) -> tuple[dict[str, Any], bytes]:
    """Run the bot over the stored history and measure it (in the child process); the
    figures, and the last chart sent."""
    from bot.app import build_app
    from tests.fakes.bybit import FakeBybit
    from tests.fakes.telegram import FakeTelegram

    log_path = work / "signals_log.csv"
    figures: dict[str, Any] = {}
    async with FakeBybit() as bybit, FakeTelegram() as telegram:
        settings = bench_settings(work, bybit, telegram=telegram, report_interval_minutes=0)
        started = time.perf_counter()
        app = await build_app(settings)
        await app.start()
        await telegram.wait_for_message(1, "Engine started", timeout=120)
        figures["ready_s"] = time.perf_counter() - started
        figures["ready_from_launch_s"] = time.perf_counter() - launched
        figures["rss_ready_mb"] = rss_mb()
        opened = watch_opened(app.engine)
        await app.engine.start_trading()
        lag = LoopLag(0.002)
        lag.start()
        counter = iter(range(1_000_000))

        async def signal_latency(delay: float = 0.0) -> float:
            await asyncio.sleep(delay)  # a measured offset into a report, not synchronisation
            i = next(counter)
            symbol = SYMBOLS[i % len(SYMBOLS)]
            row = buy_row(symbol, f"bench-{i}")
            appended = time.perf_counter()
            append(log_path, row)
            filled = await asyncio.wait_for(opened.get(), timeout=30)
            await app.engine.close(symbol)  # free the symbol; the history grows by one
            return (filled.at - appended) * 1000

        async def command(text: str, method: str) -> float:
            return await answer_ms(telegram, text, method, 60)

        try:
            figures["status_ms"] = [
                await command("/status", "sendMessage") for _ in range(statuses)
            ]
            for _ in SYMBOLS:  # each symbol's first signal subscribes its ticker: not measured
                await signal_latency()
            figures["signal_alone_ms"] = [await signal_latency() for _ in range(signals)]
            report_ms, stalls = [], []
            for _ in range(reports):
                lag.reset()
                report_ms.append(await command("/report", "sendPhoto"))
                stalls.append(lag.worst_ms)
            figures["report_ms"], figures["stall_ms"] = report_ms, stalls
            during: list[float] = []
            for i in range(signals):
                offset = (i % 5) * 0.03  # into the report's reading, stats and drawing
                report = asyncio.create_task(command("/report", "sendPhoto"))
                during.append(await signal_latency(offset))
                await report
            figures["signal_during_report_ms"] = during
            figures["peak_rss_mb"] = peak_rss_mb()
            chart = next((m.photo for m in reversed(telegram.sent(1)) if m.photo), b"")
        finally:
            await lag.stop()
            await app.stop()
    return figures, chart


def _child(work: Path, launched: float) -> None:
    figures, chart = asyncio.run(measure(work, launched, reports=10, statuses=50, signals=10))
    if path := os.environ.get("BENCH_REPORT_CHART"):  # to look at it
        Path(path).write_bytes(chart)
    print(json.dumps(figures))


def _line(name: str, values: list[float], target: str) -> str:
    return (
        f"  {name}: p50 {statistics.median(values):.1f} ms   p95 {percentile(values, 95):.1f} ms"
        f"   max {max(values):.1f} ms   ({len(values)} samples; {target})"
    )


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(Path(sys.argv[2]), float(sys.argv[3]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scratch(
            work, {"parameters": {"leverage": 10, "sl": 20, "tp": 40}, "max_open_positions": 50}
        )
        (work / "data").mkdir()
        asyncio.run(store_history(work / "data", TRADES))
        child = subprocess.run(
            # perf_counter is the system's monotonic clock: the child can measure from here.
            [
                sys.executable,
                "-m",
                "benchmarks.reports",
                "--child",
                str(work),
                repr(time.perf_counter()),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if child.returncode != 0:
        print(child.stdout, child.stderr, sep="\n")
        return 1
    f = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"reports with {TRADES:,} closed trades (paper, fake Telegram and Bybit):")
    print(
        f"  ready: {f['ready_s']:.2f} s from build_app (target < 3 s), "
        f"{f['ready_from_launch_s']:.2f} s from launching the process; "
        f"RSS at ready {f['rss_ready_mb']:.0f} MB"
    )
    print(_line("/status", f["status_ms"], "update offered -> reply sent"))
    print(_line("/report", f["report_ms"], "update offered -> chart sent; target < 500 ms"))
    print(f"  first /report: {f['report_ms'][0]:.1f} ms")
    print(_line("loop stall during /report", f["stall_ms"], "target < 50 ms"))
    print(_line("signal alone", f["signal_alone_ms"], "append -> position opened"))
    print(_line("signal during /report", f["signal_during_report_ms"], "append -> opened"))
    print(f"  peak RSS: {f['peak_rss_mb']:.0f} MB (target < 300 MB)")
    ok = (
        f["ready_s"] < 3
        and max(f["report_ms"]) < 500
        and max(f["stall_ms"]) < 50
        and f["peak_rss_mb"] < 300
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
