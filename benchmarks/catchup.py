"""``make bench``, catch-up (issue 11 point 1): the very first start with a year of signal log
already present (300k rows built from ``examples/signals_log.csv``, ~800 a day, all stale), live
against the fake Bybit: time to ready, time until every row is recorded, a fresh signal appended
at ready → its order received by the fake Bybit, and ``/status`` (``engine.status()``) and the
event loop's stalls meanwhile.

Runs on the code before issue 11 as well (``PYTHONPATH=/work/before python -m
benchmarks.catchup``): progress is read from the database by a separate connection, and every
wait is capped so that the module ends within ~90 s; what did not happen in time says so.

``python -m benchmarks.catchup [ROWS]`` (default 300000).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trader
from benchmarks.common import (
    EXAMPLES,
    LoopLag,
    append,
    bench_settings,
    buy_row,
    cancel,
    entry_order,
    scratch,
)
from tests.fakes.bybit import FakeBybit
from trader.runtime import build_runtime

SAMPLE = EXAMPLES / "signals_log.csv"
ROWS = 300_000
SPACING = timedelta(days=1) / 800  # the generator writes about 800 rows a day
FRESH_WAIT = 45.0  # seconds: the fresh signal's order, at most
RECORD_WAIT = 60.0  # seconds after ready: the whole backlog recorded, at most
STALL_TICK = 0.01  # seconds between two looks of the stall monitor


def build_log(path: Path, rows: int, now: datetime) -> None:
    """``rows`` rows of the sample log, in order, one every ``SPACING``, the newest an hour
    old (stale), each with its own ``signal_id``."""
    with SAMPLE.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        sample = list(reader)
    at, ident = header.index("timestamp"), header.index("signal_id")
    newest = now - timedelta(hours=1)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for index in range(rows):
        row = list(sample[index % len(sample)])
        stamp = newest - SPACING * (rows - 1 - index)
        row[at] = stamp.strftime("%Y-%m-%d %H:%M:%S")
        row[ident] = f"{row[ident][:20]}-{index:07d}"
        writer.writerow(row)
    path.write_text(out.getvalue(), encoding="utf-8")


def _count(db: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM signals").fetchone()[0])
    except sqlite3.Error:
        return 0


async def _ask_status(status: Callable[[], Awaitable[object]], latencies: list[float]) -> None:
    while True:
        started = time.perf_counter()
        await status()
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.1)


async def first_start(rows: int = ROWS) -> dict[str, object]:
    figures: dict[str, object] = {"rows": rows}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        strategy = {
            "parameters": {"leverage": 10, "sl": 20, "tp": 40},
            "top_coins": ["SOLUSDT", "BTCUSDT", "ETHUSDT"],
            "paper_balance_usdt": 100000,
        }
        log_path = scratch(work, strategy)
        started = time.perf_counter()
        build_log(log_path, rows, datetime.now(UTC))
        figures["log_mb"] = log_path.stat().st_size / 1e6
        figures["build_s"] = time.perf_counter() - started
        async with FakeBybit() as fake:
            settings = bench_settings(work, fake, live=True)
            statuses: list[float] = []
            lag = LoopLag(STALL_TICK)
            lag.start()
            began = time.perf_counter()
            runtime = await build_runtime(settings)
            await runtime.start()
            ready = time.perf_counter()
            figures["ready_s"] = ready - began
            asker = asyncio.create_task(_ask_status(runtime.engine.status, statuses))
            try:
                # Trading on, as the trader would switch it on at the first start.
                await runtime.engine.start_trading()
                appended = time.perf_counter()
                append(log_path, buy_row("SOLUSDT", "fresh-at-ready"))
                try:
                    order = fake.requests[await entry_order(fake, 0, timeout=FRESH_WAIT)]
                    figures["fresh_to_order_s"] = order.at - appended
                except TimeoutError:
                    figures["fresh_to_order_s"] = None
                db = settings.db_path
                deadline = ready + RECORD_WAIT
                count = await asyncio.to_thread(_count, db)
                while count < rows + 1 and time.perf_counter() < deadline:
                    await asyncio.sleep(0.25)
                    count = await asyncio.to_thread(_count, db)
                figures["recorded"] = count
                figures["record_s"] = time.perf_counter() - ready if count >= rows + 1 else None
                figures["record_rate"] = count / (time.perf_counter() - ready)
            finally:
                await cancel(asker)
                await lag.stop()
                await runtime.stop()
            figures["status_max_ms"] = max(statuses) * 1000 if statuses else None
            figures["status_p50_ms"] = statistics.median(statuses) * 1000 if statuses else None
            figures["stall_max_ms"] = lag.worst_ms
            figures["stalls_over_50ms"] = lag.over_50ms
    return figures


def report(figures: dict[str, object]) -> bool:
    rows = int(str(figures["rows"]))
    print(f"catch-up: first start with a {rows:,}-row signal log ({figures['log_mb']:.0f} MB),")
    print(f"  live against the fake Bybit (code under test: {Path(trader.__file__).parent})")
    print(f"  ready (runtime built and started): {figures['ready_s']:.2f} s")
    fresh = figures["fresh_to_order_s"]
    if isinstance(fresh, float):
        print(f"  fresh signal appended at ready -> order received: {fresh:.3f} s (target < 1 s)")
    else:
        print(
            f"  fresh signal appended at ready -> no order within {FRESH_WAIT:.0f} s (target < 1 s)"
        )
    recorded = figures["record_s"]
    if isinstance(recorded, float):
        print(
            f"  every row recorded {recorded:.1f} s after ready,"
            f" {recorded + float(str(figures['ready_s'])):.1f} s after start (target < 15 s)"
        )
    else:
        print(
            f"  {figures['recorded']:,} of {rows + 1:,} rows recorded within {RECORD_WAIT:.0f} s"
            f" ({figures['record_rate']:,.0f} rows/s)"
        )
    print(
        f"  engine.status() meanwhile: p50 {figures['status_p50_ms']:.1f} ms,"
        f" max {figures['status_max_ms']:.1f} ms (target < 1 s)"
    )
    print(
        f"  event loop: longest stall {figures['stall_max_ms']:.0f} ms,"
        f" {figures['stalls_over_50ms']} over 50 ms"
    )
    return (
        isinstance(fresh, float)
        and fresh < 1
        and isinstance(recorded, float)
        and recorded < 15
        and float(str(figures["status_max_ms"])) < 1000
    )


def main() -> int:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS
    return 0 if report(asyncio.run(first_start(rows))) else 1


if __name__ == "__main__":
    sys.exit(main())
