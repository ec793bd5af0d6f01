"""``make bench``, the round trips before an order: with every REST answer of the fake Bybit
delayed 100 ms (a real network's round trip), the time from a signal row being appended until
its market order reaches Bybit, and the REST calls made for the signal before it.

Two kinds of symbol: whitelisted ones (``top_coins``, prepared at start-up: the order should be
the first call) and symbols seen for the first time (their calls run concurrently: one round
trip). A live market is never silent for long, so a background task moves prices by a tick
now and then, as Bybit's stream would.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from benchmarks.common import (
    SYMBOLS,
    append,
    bench_settings,
    buy_row,
    cancel,
    entry_order,
    scratch,
    symbol_of,
    trading,
)
from tests.fakes.bybit import FakeBybit

REST_DELAY = 0.1  # seconds on every REST answer
WHITELIST = SYMBOLS
NOISE_EVERY = 0.2  # seconds between two price moves of the background market


@dataclass
class RoundTrips:
    """Per signal: append → order received (ms), and REST calls for its symbol before it."""

    to_order_ms: list[float] = field(default_factory=list)
    calls_before: list[int] = field(default_factory=list)


async def _market_noise(fake: FakeBybit, symbols: list[str]) -> None:
    """Move one symbol's price a tick up or back down every ``NOISE_EVERY`` seconds."""
    bases = {s: fake.tickers[s].last for s in symbols}
    step = 0
    while True:
        await asyncio.sleep(NOISE_EVERY)
        symbol = symbols[step % len(symbols)]
        tick = Decimal(fake.instruments[symbol].tick_size)
        await fake.set_ticker(symbol, bases[symbol] + tick * (step // len(symbols) % 2))
        step += 1


async def order_round_trips(*, whitelisted: bool, signals: int = 30) -> RoundTrips:
    """Append ``signals`` BUY rows, one at a time, against a live runtime on the fake Bybit;
    whitelisted symbols are traded in turn (each closed before its next turn), or each signal
    is for a symbol the process has not traded yet."""
    result = RoundTrips()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        strategy = {
            "parameters": {"leverage": 10, "sl": 20, "tp": 40},
            "top_coins": list(WHITELIST) if whitelisted else [],
            "paper_balance_usdt": 100000,
            "max_open_positions": 1000,
        }
        log_path = scratch(work, strategy)
        async with FakeBybit(rest_delay=REST_DELAY) as fake:
            fresh = [f"NEW{i}USDT" for i in range(signals)]
            for symbol in fresh:
                fake.seed_instrument(symbol, "0.01", "0.1", "0.1", price="100")
            async with trading(bench_settings(work, fake, live=True)) as bot:
                moving = list(WHITELIST) if whitelisted else fresh
                noise = asyncio.create_task(_market_noise(fake, moving))
                try:
                    for i in range(signals):
                        symbol = WHITELIST[i % len(WHITELIST)] if whitelisted else fresh[i]
                        mark = len(fake.requests)
                        started = time.monotonic()
                        append(log_path, buy_row(symbol, f"rt-{i}"))
                        index = await entry_order(fake, mark, symbol)
                        order = fake.requests[index]
                        result.to_order_ms.append((order.at - started) * 1000)
                        result.calls_before.append(
                            sum(
                                1
                                for r in fake.requests[mark:index]
                                if r.is_rest and symbol_of(r) == symbol
                            )
                        )
                        opened = await asyncio.wait_for(bot.opened.get(), timeout=10)
                        assert opened.symbol == symbol
                        if whitelisted:
                            await bot.runtime.engine.close(symbol)  # free it for its next turn
                finally:
                    await cancel(noise)
    return result
