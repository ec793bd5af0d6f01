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
import contextlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tests.fakes.bybit import FakeBybit, RecordedRequest
from trader.events import Event, PositionOpened
from trader.runtime import build_runtime
from trader.settings import load_settings

REST_DELAY = 0.1  # seconds on every REST answer
CREATE = "/v5/order/create"
WHITELIST = ("SOLUSDT", "BTCUSDT", "ETHUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT")
NOISE_EVERY = 0.2  # seconds between two price moves of the background market
HEADER = (
    "timestamp,symbol,interval,verdict,confidence,score,min_score,max_score,entry_price,vwap,"
    "oi,oi_change,volume_spike,liq_long,liq_short,components,ttl_minutes,target_min,target_max,"
    "signal_id\n"
)


@dataclass
class RoundTrips:
    """Per signal: append → order received (ms), and REST calls for its symbol before it."""

    to_order_ms: list[float] = field(default_factory=list)
    calls_before: list[int] = field(default_factory=list)


def _symbol_of(request: RecordedRequest) -> str:
    if request.method == "POST":
        try:
            return str(json.loads(request.body or "{}").get("symbol", ""))
        except ValueError:
            return ""
    return request.query.get("symbol", "")


def _is_entry(request: RecordedRequest, symbol: str) -> bool:
    return (
        request.path == CREATE
        and _symbol_of(request) == symbol
        and "reduceOnly" not in request.body
    )


async def _order_after(fake: FakeBybit, mark: int, symbol: str) -> int:
    """The index in ``fake.requests`` of the first entry order for ``symbol`` from ``mark`` on."""

    def found() -> int | None:
        return next(
            (i for i in range(mark, len(fake.requests)) if _is_entry(fake.requests[i], symbol)),
            None,
        )

    await fake.wait_until(lambda: found() is not None, timeout=10)
    index = found()
    assert index is not None
    return index


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
        log_path = work / "signals_log.csv"
        log_path.write_text(HEADER)
        strategy = {
            "parameters": {"leverage": 10, "sl": 20, "tp": 40},
            "top_coins": list(WHITELIST) if whitelisted else [],
            "paper_balance_usdt": 100000,
            "max_open_positions": 1000,
        }
        (work / "strategy.json").write_text(json.dumps(strategy))
        async with FakeBybit(rest_delay=REST_DELAY) as fake:
            fresh = [f"NEW{i}USDT" for i in range(signals)]
            for symbol in fresh:
                fake.seed_instrument(symbol, "0.01", "0.1", "0.1", price="100")
            fake.add_api_key("bench-key", "bench-secret")
            fake.set_wallet("1000000")
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
                trading_mode="live",
                bybit_api_key="bench-key",
                bybit_api_secret="bench-secret",
            )
            runtime = await build_runtime(settings)
            opened: asyncio.Queue[str] = asyncio.Queue()

            async def on_event(event: Event) -> None:
                if isinstance(event, PositionOpened):
                    opened.put_nowait(event.position.symbol)

            runtime.engine.bus.subscribe(on_event)
            await runtime.start()
            await runtime.engine.start_trading()
            moving = list(WHITELIST) if whitelisted else fresh
            noise = asyncio.create_task(_market_noise(fake, moving))
            try:
                for i in range(signals):
                    symbol = WHITELIST[i % len(WHITELIST)] if whitelisted else fresh[i]
                    mark = len(fake.requests)
                    started = time.monotonic()
                    row = f"{_now()},{symbol},,BUY,0.9,,,,,,,,,,,,15,,,rt-{i}\n"
                    with log_path.open("a") as handle:
                        handle.write(row)
                    index = await _order_after(fake, mark, symbol)
                    order = fake.requests[index]
                    result.to_order_ms.append((order.at - started) * 1000)
                    result.calls_before.append(
                        sum(
                            1
                            for r in fake.requests[mark:index]
                            if r.is_rest and _symbol_of(r) == symbol
                        )
                    )
                    assert await asyncio.wait_for(opened.get(), timeout=10) == symbol
                    if whitelisted:
                        await runtime.engine.close(symbol)  # free it for its next turn
            finally:
                noise.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await noise
                await runtime.stop()
    return result


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
