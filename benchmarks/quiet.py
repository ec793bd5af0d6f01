"""``make bench``, a quiet market: the paper product with 15 open positions whose prices do not
move (Bybit pushes a ticker only on change), left idle against the fake Bybit (real pybit).

Measures the REST ticker calls per minute and the public stream's rebuilds per minute while
idle. Uses only public APIs that predate issue 11, so ``PYTHONPATH=/work/before python -m
benchmarks.quiet`` measures the code before it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import append, bench_settings, buy_row, scratch, trading
from tests.fakes.bybit import PUBLIC_LINEAR_PATH, FakeBybit

POSITIONS = 15
IDLE = 45.0  # seconds watched; the old silence limit rebuilt the stream every 9 s
TICKERS = "/v5/market/tickers"
EXTRA = ("DOTUSDT", "LTCUSDT", "ATOMUSDT")  # the fake lists 12 USDT perpetuals; 15 are needed


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
        strategy = {
            "parameters": {"leverage": 10, "sl": 20, "tp": 40},
            "paper_balance_usdt": 1000000,
            "max_open_positions": 1000,
        }
        log_path = scratch(work, strategy)
        async with FakeBybit() as fake:
            for symbol in EXTRA:
                fake.seed_instrument(symbol, "0.001", "0.01", "0.01", price="5.000")
            symbols = sorted(s for s in fake.tickers if s.endswith("USDT"))[:POSITIONS]
            async with trading(bench_settings(work, fake)) as bot:
                # A long TTL: the positions stay open through the idle spell.
                append(
                    log_path,
                    *(buy_row(s, f"quiet-{i}", ttl_minutes=600) for i, s in enumerate(symbols)),
                )
                for _ in symbols:
                    await asyncio.wait_for(bot.opened.get(), timeout=30)
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
