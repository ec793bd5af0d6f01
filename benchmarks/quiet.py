"""``make bench``, a quiet market: the paper product with 15 open positions whose prices do not
move (Bybit pushes a ticker only on change), left idle against the fake Bybit (real pybit).

Measures the REST ticker calls per minute and the public stream's rebuilds per minute while
idle. Uses only public APIs that predate issue 11, so ``PYTHONPATH=/work/before`` measures the
code before it.
"""

from __future__ import annotations

import os
import sys

# ``python -m`` puts the working directory ahead of PYTHONPATH; a bench asked to measure
# another tree (PYTHONPATH=/work/before) must import that tree's product, so it goes first.
for _entry in reversed([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]):
    if os.path.isdir(os.path.join(_entry, "trader")):
        sys.path.insert(0, os.path.abspath(_entry))

import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.fakes.bybit import PUBLIC_LINEAR_PATH, FakeBybit  # noqa: E402
from trader.events import Event, PositionOpened  # noqa: E402
from trader.runtime import build_runtime  # noqa: E402
from trader.settings import load_settings  # noqa: E402

POSITIONS = 15
IDLE = 45.0  # seconds watched; the old silence limit rebuilt the stream every 9 s
TICKERS = "/v5/market/tickers"
EXTRA = ("DOTUSDT", "LTCUSDT", "ATOMUSDT")  # the fake lists 12 USDT perpetuals; 15 are needed
HEADER = (
    "timestamp,symbol,interval,verdict,confidence,score,min_score,max_score,entry_price,vwap,"
    "oi,oi_change,volume_spike,liq_long,liq_short,components,ttl_minutes,target_min,target_max,"
    "signal_id\n"
)


@dataclass(frozen=True)
class Idle:
    seconds: float
    rest_tickers: int
    rebuilds: int
    pings: int  # sent on the public stream, each answered by a pong

    def per_minute(self, count: int) -> float:
        return count * 60 / self.seconds


async def quiet_positions(idle: float = IDLE) -> Idle:
    """Open ``POSITIONS`` paper positions, then count, for ``idle`` seconds without a price
    move, the REST ticker calls, the new public stream connections and the pings."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log_path = work / "signals_log.csv"
        log_path.write_text(HEADER)
        strategy = {
            "parameters": {"leverage": 10, "sl": 20, "tp": 40},
            "paper_balance_usdt": 1000000,
            "max_open_positions": 1000,
        }
        (work / "strategy.json").write_text(json.dumps(strategy))
        async with FakeBybit() as fake:
            for symbol in EXTRA:
                fake.seed_instrument(symbol, "0.001", "0.01", "0.01", price="5.000")
            symbols = sorted(s for s in fake.tickers if s.endswith("USDT"))[:POSITIONS]
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
            )
            runtime = await build_runtime(settings)
            opened: asyncio.Queue[str] = asyncio.Queue()

            async def on_event(event: Event) -> None:
                if isinstance(event, PositionOpened):
                    opened.put_nowait(event.position.symbol)

            runtime.engine.bus.subscribe(on_event)
            await runtime.start()
            try:
                await runtime.engine.start_trading()
                now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                with log_path.open("a") as handle:
                    for i, symbol in enumerate(symbols):
                        # A long TTL: the positions stay open through the idle spell.
                        handle.write(f"{now},{symbol},,BUY,0.9,,,,,,,,,,,,600,,,quiet-{i}\n")
                for _ in symbols:
                    await asyncio.wait_for(opened.get(), timeout=30)
                rest, connections = len(fake.requests_to(TICKERS)), fake.public_connections
                pings = _pings(fake)
                started = time.monotonic()
                await asyncio.sleep(idle)  # the measurement itself: nothing to wait on
                return Idle(
                    seconds=time.monotonic() - started,
                    rest_tickers=len(fake.requests_to(TICKERS)) - rest,
                    rebuilds=fake.public_connections - connections,
                    pings=_pings(fake) - pings,
                )
            finally:
                await runtime.stop()


def _pings(fake: FakeBybit) -> int:
    return sum(
        1
        for m in fake.ws_messages
        if m.path == PUBLIC_LINEAR_PATH and m.message.get("op") == "ping"
    )


def main() -> int:
    logging.disable(logging.WARNING)  # the old code logs every rebuild
    try:
        idle = asyncio.run(quiet_positions())
    finally:
        logging.disable(logging.NOTSET)
    print(
        f"quiet market, {POSITIONS} open paper positions, no price move for {idle.seconds:.0f} s:"
    )
    print(
        f"  REST ticker calls {idle.per_minute(idle.rest_tickers):.0f}/min"
        f"   public stream rebuilds {idle.per_minute(idle.rebuilds):.1f}/min"
        "   (target 0 and 0 while the stream answers)"
    )
    print(f"  pings on the public stream {idle.per_minute(idle.pings):.0f}/min")
    return 0 if idle.rest_tickers == 0 and idle.rebuilds == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
