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
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchmarks import catchup, latency, quiet, replay_scale, reports
from benchmarks.round_trips import order_round_trips
from bot.app import build_app
from storage.codec import TRADE_INSERT, trade_values
from storage.repositories import SqliteRepositories
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from trader.events import Event, PositionOpened
from trader.models import ClosedTrade, CloseReason, Side
from trader.replay import load_instruments, load_outcomes, load_signals, replay
from trader.runtime import build_runtime
from trader.settings import load_settings, load_strategy

ROOT = Path(__file__).resolve().parent.parent
CREATE = "/v5/order/create"
EXAMPLES = ROOT / "examples"
HEADER = (
    "timestamp,symbol,interval,verdict,confidence,score,min_score,max_score,entry_price,vwap,"
    "oi,oi_change,volume_spike,liq_long,liq_short,components,ttl_minutes,target_min,target_max,"
    "signal_id\n"
)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def entry_latency(
    signals: int = 60, *, live: bool = False
) -> tuple[list[float], list[float]]:
    """Append → position filled and stored, and (live) append → the order reaching the fake
    Bybit; live runs against the fake's signed private REST and private stream."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log_path = work / "signals_log.csv"
        log_path.write_text(HEADER)
        strategy = {
            "parameters": {"leverage": 10, "sl": 20, "tp": 40},
            "paper_balance_usdt": 100000,
            "max_open_positions": 1000,
        }
        (work / "strategy.json").write_text(json.dumps(strategy))
        async with FakeBybit() as fake:
            keys: dict[str, str] = {}
            if live:
                fake.add_api_key("bench-key", "bench-secret")
                fake.set_wallet("1000000")
                keys = {
                    "trading_mode": "live",
                    "bybit_api_key": "bench-key",
                    "bybit_api_secret": "bench-secret",
                }
            settings = load_settings(
                env_file=None,
                telegram_bot_token="1:bench",
                telegram_allowed_chat_ids="1",
                bybit_rest_url=fake.url,
                bybit_ws_public_url=fake.ws_public_url,
                bybit_ws_private_url=fake.ws_private_url,
                signals_path=log_path,
                strategy_path=work / "strategy.json",
                data_dir=work / "data",
                **keys,
            )
            runtime = await build_runtime(settings)
            opened: asyncio.Queue[float] = asyncio.Queue()

            async def on_event(event: Event) -> None:
                if isinstance(event, PositionOpened):
                    opened.put_nowait(time.perf_counter())

            runtime.engine.bus.subscribe(on_event)
            await runtime.start()
            await runtime.engine.start_trading()
            symbols = ["SOLUSDT", "BTCUSDT", "ETHUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT"]
            latencies: list[float] = []
            to_order: list[float] = []

            def entries() -> int:
                return sum(1 for r in fake.requests_to(CREATE) if "reduceOnly" not in r.body)

            try:
                for i in range(signals):
                    symbol = symbols[i % len(symbols)]
                    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                    row = f"{now},{symbol},,BUY,0.9,,,,,,,,,,,,15,,,bench-{i}\n"
                    sent_before = entries()
                    started = time.perf_counter()
                    with log_path.open("a") as handle:
                        handle.write(row)
                    if live:
                        await fake.wait_until(lambda n=sent_before: entries() > n, timeout=10)
                        to_order.append((time.perf_counter() - started) * 1000)
                    filled = await asyncio.wait_for(opened.get(), timeout=10)
                    latencies.append((filled - started) * 1000)
                    await runtime.engine.close(symbol)  # free the symbol for its next turn
            finally:
                await runtime.stop()
            return latencies, to_order


async def store_closed_trades(path: Path, count: int) -> None:
    """``count`` closed trades over the last 30 days, written in one transaction."""
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
    repo = await SqliteRepositories.open(path)
    try:
        async with repo.database.transaction() as conn:
            await conn.executemany(
                TRADE_INSERT, [trade_values(i + 1, t) for i, t in enumerate(trades)]
            )
    finally:
        await repo.close()


async def status_latency(samples: int = 200, trades: int = 10_000) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "signals_log.csv").write_text(HEADER)
        (work / "strategy.json").write_text(json.dumps({"parameters": {"leverage": 10}}))
        await store_closed_trades(work / "data" / "paper.db", trades)
        async with FakeBybit() as bybit, FakeTelegram() as telegram:
            settings = load_settings(
                env_file=None,
                telegram_bot_token=telegram.token,
                telegram_allowed_chat_ids="1",
                telegram_api_url=telegram.url,
                bybit_rest_url=bybit.url,
                bybit_ws_public_url=bybit.ws_public_url,
                signals_path=work / "signals_log.csv",
                strategy_path=work / "strategy.json",
                data_dir=work / "data",
                report_interval_minutes=0,
            )
            app = await build_app(settings)
            await app.start()
            latencies: list[float] = []
            try:
                await telegram.wait_for_message(1, "Engine started", timeout=10)
                assert len(await app.engine.recent_trades(trades + 1)) == trades
                for _ in range(samples):
                    before = len(telegram.sent(1))
                    started = time.monotonic()
                    telegram.push_message(1, "/status")
                    await telegram.wait_until(lambda n=before: len(telegram.sent(1)) > n, 10)
                    reply = telegram.sent(1)[before]
                    assert "Status" in reply.plain
                    answered = next(
                        c.at
                        for c in reversed(telegram.calls("sendMessage"))
                        if c.ok and "Status" in str(c.params.get("text", ""))
                    )
                    latencies.append((answered - started) * 1000)
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
    return (
        f"  p50 {percentile(values, 50):.1f} ms   p95 {percentile(values, 95):.1f} ms   "
        f"max {max(values):.1f} ms   mean {statistics.fmean(values):.1f} ms   ({target})"
    )


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
    s50, s95 = percentile(replies, 50), percentile(replies, 95)
    print(f"/status, update offered -> reply sent, 10,000 closed trades ({len(replies)} samples):")
    print(
        f"  p50 {s50:.1f} ms   p95 {s95:.1f} ms   max {max(replies):.1f} ms   "
        f"mean {statistics.fmean(replies):.1f} ms   (target p95 <= 100 ms)"
    )
    rate, count = replay_throughput()
    print(f"replay: {rate:,.0f} signals/s (the {count}-row sample log, 20 rounds)")
    replay_scale.main()  # a 300k-row log with a large balance (issue 11)
    quiet.main()  # idle REST calls and stream rebuilds, 15 quiet positions
    catchup.main()  # first start with a 300k-row signal log
    latency.main()  # append -> order, piece by piece
    reports.main()  # /report and /status with 100k closed trades, ready, RSS
    worst = max(percentile(v, 95) for v in (latencies, ordered, filled))
    return 0 if worst <= 50 and s95 <= 100 and percentile(prepared, 95) < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
