"""``make bench``: how fast the paper engine acts on a signal, how many round trips stand
before a live order (``round_trips``), how fast the bot answers ``/status``, and how fast
replay runs.

Append-to-fill: the time from a signal row being appended to the log until the engine has
filled and stored the position, against the loopback fake Bybit with the real pybit client.
/status: from the update being offered to the bot's long poll until its ``sendMessage``
reaches the fake Bot API server, with 10,000 closed trades stored, the real aiogram client.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchmarks import catchup, dashboard, latency, quiet, replay_scale, reports
from benchmarks.common import (
    EXAMPLES,
    SYMBOLS,
    answer_ms,
    append,
    bench_settings,
    buy_row,
    entry_order,
    percentile,
    scratch,
    spread,
    store_trades,
    trading,
    whole_trade_row,
)
from benchmarks.round_trips import order_round_trips
from bot.app import build_app
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from trader.models import ClosedTrade, CloseReason, Side
from trader.replay import load_instruments, load_outcomes, load_signals, replay
from trader.strategy import load_strategy


async def entry_latency(
    signals: int = 60, *, live: bool = False
) -> tuple[list[float], list[float]]:
    """Append → position filled and stored, and (live) append → the order reaching the fake
    Bybit; live runs against the fake's signed private REST and private stream."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        strategy = {
            "parameters": {"leverage": 10, "sl": 20, "tp": 40},
            "paper_balance_usdt": 100000,
            "max_open_positions": 1000,
        }
        log_path = scratch(work, strategy)
        async with FakeBybit() as fake, trading(bench_settings(work, fake, live=live)) as bot:
            latencies: list[float] = []
            to_order: list[float] = []
            for i in range(signals):
                symbol = SYMBOLS[i % len(SYMBOLS)]
                row = buy_row(symbol, f"bench-{i}")
                mark = len(fake.requests)
                started = time.perf_counter()
                append(log_path, row)
                if live:
                    await entry_order(fake, mark)
                    to_order.append((time.perf_counter() - started) * 1000)
                filled = await asyncio.wait_for(bot.opened.get(), timeout=10)
                latencies.append((filled.at - started) * 1000)
                await bot.runtime.engine.close(symbol)  # free the symbol for its next turn
            return latencies, to_order


def closed_trades(count: int) -> list[ClosedTrade]:
    """``count`` closed trades over the last 30 days."""
    now = datetime.now(UTC)
    trades = []
    for i in range(count):
        closed = now - timedelta(days=30) * (1 - i / count)
        net = Decimal(i % 7 - 3) + Decimal("0.25")
        trades.append(
            ClosedTrade(
                signal_id=f"hist-{i}",
                symbol=("SOLUSDT", "BTCUSDT", "ETHUSDT")[i % 3],
                side=Side.BUY if i % 2 else Side.SELL,
                qty=Decimal("1.5"),
                entry_price=Decimal("150.01"),
                exit_price=Decimal("151.20"),
                leverage=10,
                margin=Decimal("22.50"),
                entry_fee=Decimal("0.12375825"),
                exit_fee=Decimal("0.124740"),
                gross_pnl=net + Decimal("0.25"),
                net_pnl=net,
                reason=CloseReason.TTL,
                opened_at=closed - timedelta(minutes=15),
                closed_at=closed,
            )
        )
    return trades


async def status_latency(samples: int = 200, trades: int = 10_000) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scratch(work, {"parameters": {"leverage": 10}})
        rows = [whole_trade_row(t, i + 1) for i, t in enumerate(closed_trades(trades))]
        await store_trades(work / "data" / "paper.db", rows)
        async with FakeBybit() as bybit, FakeTelegram() as telegram:
            settings = bench_settings(work, bybit, telegram=telegram, report_interval_minutes=0)
            app = await build_app(settings)
            await app.start()
            latencies: list[float] = []
            try:
                await telegram.wait_for_message(1, "Engine started", timeout=10)
                assert len(await app.engine.recent_trades(trades + 1)) == trades
                for _ in range(samples):
                    before = len(telegram.sent(1))
                    latencies.append(await answer_ms(telegram, "/status", "sendMessage", 10))
                    assert "Status" in telegram.sent(1)[before].plain
            finally:
                await app.stop()
            return latencies


def replay_throughput(rounds: int = 20) -> tuple[float, int]:
    strategy = load_strategy(EXAMPLES / "BYBIT_OPTIMAL_CONFIG.json")
    paths = load_outcomes(EXAMPLES / "signal_outcomes.csv")
    instruments = load_instruments(EXAMPLES / "instruments.json")
    records = load_signals(EXAMPLES / "signals_log.csv")
    started = time.perf_counter()
    for _ in range(rounds):
        result = replay(records, paths, strategy, instruments)
    elapsed = time.perf_counter() - started
    return rounds * len(records) / elapsed, result.signals


def _figures(values: list[float], target: str) -> str:
    return f"  {spread(values)}   mean {statistics.fmean(values):.1f} ms   ({target})"


def main() -> int:
    latencies, _ = asyncio.run(entry_latency())
    print(
        f"paper engine, signal appended -> position filled and stored ({len(latencies)} signals):"
    )
    print(_figures(latencies, "target p95 <= 50 ms"))
    filled, ordered = asyncio.run(entry_latency(live=True))
    print(
        "live engine against the fake Bybit (signed REST, private stream, real pybit), "
        f"{len(ordered)} signals:"
    )
    print("signal appended -> market order received by Bybit:")
    print(_figures(ordered, "target p95 <= 50 ms"))
    print("signal appended -> fill pushed on the private stream, position stored:")
    print(_figures(filled, "target p95 <= 50 ms"))
    kinds = (
        ("whitelisted symbols, prepared at start-up", True, "target p95 < 60 ms"),
        ("symbols seen for the first time", False, "one round trip expected"),
    )
    prepared: list[float] = []
    print("live, every REST answer delayed 100 ms: signal appended -> order received by Bybit:")
    for label, whitelisted, target in kinds:
        trips = asyncio.run(order_round_trips(whitelisted=whitelisted))
        calls = trips.calls_before
        print(f"{label} ({len(trips.to_order_ms)} signals):")
        print(_figures(trips.to_order_ms, target))
        print(
            f"  REST calls for the signal before its order: mean {statistics.fmean(calls):.1f}"
            f"   max {max(calls)}"
        )
        if whitelisted:
            prepared = trips.to_order_ms
    replies = asyncio.run(status_latency())
    print(f"/status, update offered -> reply sent, 10,000 closed trades ({len(replies)} samples):")
    print(_figures(replies, "target p95 <= 100 ms"))
    rate, count = replay_throughput()
    print(f"replay: {rate:,.0f} signals/s (the {count}-row sample log, 20 rounds)")
    replay_scale.main()  # a 300k-row log with a large balance (issue 11)
    quiet.main()  # idle REST calls and stream rebuilds, 15 quiet positions
    catchup.main()  # first start with a 300k-row signal log
    latency.main()  # append -> order, piece by piece
    reports.main()  # /report and /status with 100k closed trades, ready, RSS
    dashboard.main()  # /profit, /daily, /performance with 100k closed trades
    worst = max(percentile(v, 95) for v in (latencies, ordered, filled))
    return (
        0 if worst <= 50 and percentile(replies, 95) <= 100 and percentile(prepared, 95) < 60 else 1
    )


if __name__ == "__main__":
    sys.exit(main())
