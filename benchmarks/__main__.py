"""``make bench``: how fast the paper engine acts on a signal, and how fast replay runs.

Append-to-fill: the time from a signal row being appended to the log until the engine has
filled and stored the position, against the loopback fake Bybit with the real pybit client.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.app import build_runtime
from tests.fakes.bybit import FakeBybit
from trader.events import Event, PositionOpened
from trader.replay import load_instruments, load_outcomes, load_signals, replay
from trader.settings import load_settings, load_strategy

ROOT = Path(__file__).resolve().parent.parent
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


async def paper_latency(signals: int = 60) -> list[float]:
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
            settings = load_settings(
                env_file=None,
                telegram_bot_token="1:bench",
                telegram_allowed_chat_ids="1",
                bybit_rest_url=fake.url,
                bybit_ws_public_url=fake.ws_public_url,
                signals_path=log_path,
                strategy_path=work / "strategy.json",
                data_dir=work / "data",
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
            try:
                for i in range(signals):
                    symbol = symbols[i % len(symbols)]
                    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                    row = f"{now},{symbol},,BUY,0.9,,,,,,,,,,,,15,,,bench-{i}\n"
                    started = time.perf_counter()
                    with log_path.open("a") as handle:
                        handle.write(row)
                    filled = await asyncio.wait_for(opened.get(), timeout=10)
                    latencies.append((filled - started) * 1000)
                    await runtime.engine.close(symbol)  # free the symbol for its next turn
            finally:
                await runtime.stop()
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


def main() -> int:
    latencies = asyncio.run(paper_latency())
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    print(
        f"paper engine, signal appended -> position filled and stored ({len(latencies)} signals):"
    )
    print(
        f"  p50 {p50:.1f} ms   p95 {p95:.1f} ms   max {max(latencies):.1f} ms   "
        f"mean {statistics.fmean(latencies):.1f} ms   (target p95 <= 50 ms)"
    )
    rate, count = replay_throughput()
    print(f"replay: {rate:,.0f} signals/s (the {count}-row sample log, 20 rounds)")
    return 0 if p95 <= 50 else 1


if __name__ == "__main__":
    sys.exit(main())
