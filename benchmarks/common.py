"""What the benches share: a scratch directory with the strategy and the signal log, settings
pointing at the loopback fakes, a runtime trading on them with the positions it opens queued,
BUY rows appended to the log, the wait for an entry order to reach the fake Bybit, the event
loop's stalls, and the p50/p95 figures printed.

Uses only public APIs that predate issue 11, so that a bench run with ``PYTHONPATH=/work/before``
(see ``benchmarks/__init__.py``) measures the code before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from storage.codec import TRADE_INSERT, trade_values
from storage.repositories import SqliteRepositories
from tests.fakes.bybit import FakeBybit, RecordedRequest
from trader.events import Event, PositionOpened
from trader.models import ClosedTrade
from trader.runtime import Runtime, build_runtime
from trader.settings import Settings, load_settings

if TYPE_CHECKING:
    from tests.fakes.telegram import FakeTelegram
    from trader.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CREATE = "/v5/order/create"
SYMBOLS = ("SOLUSDT", "BTCUSDT", "ETHUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT")
HEADER = (
    "timestamp,symbol,interval,verdict,confidence,score,min_score,max_score,entry_price,vwap,"
    "oi,oi_change,volume_spike,liq_long,liq_short,components,ttl_minutes,target_min,target_max,"
    "signal_id\n"
)
BENCH_KEY, BENCH_SECRET = "bench-key", "bench-secret"
BATCH = 10_000  # closed trades a transaction when storing a history


# -- figures -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def spread(values: Sequence[float], *, digits: int = 1) -> str:
    """``p50 … ms   p95 … ms   max … ms``."""
    return (
        f"p50 {percentile(values, 50):.{digits}f} ms   p95 {percentile(values, 95):.{digits}f} ms"
        f"   max {max(values):.{digits}f} ms"
    )


# -- the process under test ----------------------------------------------------------------------


def scratch(work: Path, strategy: dict[str, Any]) -> Path:
    """``strategy.json`` and an empty signal log (its header only) in ``work``; the log."""
    # The benches' rows carry a placeholder entry price: not one to hold the market to.
    strategy = {"max_entry_deviation_pct": 1_000_000_000, **strategy}
    (work / "strategy.json").write_text(json.dumps(strategy))
    log_path = work / "signals_log.csv"
    log_path.write_text(HEADER)
    return log_path


def bench_settings(
    work: Path,
    bybit: FakeBybit,
    *,
    live: bool = False,
    telegram: FakeTelegram | None = None,
    **extra: Any,
) -> Settings:
    """Settings for the files in ``work`` against the fakes. ``live``: the fake Bybit gets the
    bench's API key and a wallet no bench spends, and the process trades on it. Without a
    ``telegram`` fake the bot's token is a dummy (a runtime alone never calls Telegram)."""
    if live:
        bybit.add_api_key(BENCH_KEY, BENCH_SECRET)
        bybit.set_wallet("1000000")
        extra |= {
            "trading_mode": "live",
            "bybit_api_key": BENCH_KEY,
            "bybit_api_secret": BENCH_SECRET,
        }
    if telegram is not None:
        extra |= {"telegram_bot_token": telegram.token, "telegram_api_url": telegram.url}
    values: dict[str, Any] = {"telegram_bot_token": "1:bench", **extra}
    return load_settings(
        env_file=None,
        telegram_allowed_chat_ids="1",
        bybit_rest_url=bybit.url,
        bybit_ws_public_url=bybit.ws_public_url,
        bybit_ws_private_url=bybit.ws_private_url,
        signals_path=work / "signals_log.csv",
        strategy_path=work / "strategy.json",
        data_dir=work / "data",
        **values,
    )


class Opened(NamedTuple):
    symbol: str
    at: float  # perf_counter when the event came out


def watch_opened(engine: Engine) -> asyncio.Queue[Opened]:
    """Every position the engine opens from now on, in order."""
    opened: asyncio.Queue[Opened] = asyncio.Queue()

    async def on_event(event: Event) -> None:
        if isinstance(event, PositionOpened):
            opened.put_nowait(Opened(event.position.symbol, time.perf_counter()))

    engine.bus.subscribe(on_event)
    return opened


@dataclass(frozen=True)
class Trading:
    runtime: Runtime
    opened: asyncio.Queue[Opened]


@contextlib.asynccontextmanager
async def trading(settings: Settings) -> AsyncIterator[Trading]:
    """A runtime built and started on ``settings`` with trading switched on, the positions it
    opens queued; stopped at the end."""
    runtime = await build_runtime(settings)
    opened = watch_opened(runtime.engine)
    await runtime.start()
    try:
        await runtime.engine.start_trading()
        yield Trading(runtime, opened)
    finally:
        await runtime.stop()


# -- signals and orders --------------------------------------------------------------------------


def buy_row(symbol: str, signal_id: str, *, ttl_minutes: int = 15) -> str:
    """A BUY signal row of the log, stamped now (UTC)."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{now},{symbol},,BUY,0.9,,,,,,,,,,,,{ttl_minutes},,,{signal_id}\n"


def append(log_path: Path, *rows: str) -> None:
    with log_path.open("a") as handle:
        handle.writelines(rows)


def symbol_of(request: RecordedRequest) -> str:
    """The symbol a REST request is about: its JSON body's (POST) or its query's."""
    if request.method == "POST":
        try:
            return str(json.loads(request.body or "{}").get("symbol", ""))
        except ValueError:
            return ""
    return request.query.get("symbol", "")


def _entry_from(fake: FakeBybit, mark: int, symbol: str | None) -> int | None:
    return next(
        (
            i
            for i in range(mark, len(fake.requests))
            if fake.requests[i].path == CREATE
            and "reduceOnly" not in fake.requests[i].body
            and (symbol is None or symbol_of(fake.requests[i]) == symbol)
        ),
        None,
    )


async def entry_order(
    fake: FakeBybit,
    mark: int,
    symbol: str | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> int:
    """The index in ``fake.requests`` of the first entry order (for ``symbol``, if given) from
    ``mark`` on, once it has come; ``TimeoutError`` after ``timeout`` seconds."""
    await fake.wait_until(lambda: _entry_from(fake, mark, symbol) is not None, timeout)
    index = _entry_from(fake, mark, symbol)
    assert index is not None
    return index


async def answer_ms(telegram: FakeTelegram, text: str, method: str, timeout: float) -> float:  # noqa: ASYNC109
    """``text`` sent to the bot from chat 1: ms from the update being offered until the
    bot's next ``method`` call reaches the fake Bot API."""
    before = len(telegram.calls(method))
    pushed = time.monotonic()
    telegram.push_message(1, text)
    await telegram.wait_until(lambda: len(telegram.calls(method)) > before, timeout)
    return (telegram.calls(method)[before].at - pushed) * 1000


def whole_trade_row(trade: ClosedTrade, number: int) -> tuple[Any, ...]:
    """The ``trade_values`` row of ``trade`` as a whole position's one trade (a part has no
    position id; stats count a trade at the row that has one), under a made-up position id
    below 0, so none is one the engine gives a position it opens."""
    return trade_values(-number, trade)


async def store_trades(db_path: Path, rows: Iterable[tuple[Any, ...]]) -> None:
    """Closed trades (``whole_trade_row`` rows) into the database, ``BATCH`` a
    transaction."""
    repo = await SqliteRepositories.open(db_path)
    try:
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                async with repo.database.transaction() as conn:
                    await conn.executemany(TRADE_INSERT, batch)
                batch = []
        if batch:
            async with repo.database.transaction() as conn:
                await conn.executemany(TRADE_INSERT, batch)
    finally:
        await repo.close()


# -- the event loop ------------------------------------------------------------------------------


class LoopLag:
    """How late the loop runs a ``tick`` sleep, sampled all along: the longest stall and the
    stalls over 50 ms since ``reset``."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self.worst_ms = 0.0
        self.over_50ms = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    def reset(self) -> None:
        self.worst_ms, self.over_50ms = 0.0, 0

    async def stop(self) -> None:
        if self._task is not None:
            await cancel(self._task)

    async def _watch(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.tick)
            stall = (time.perf_counter() - before - self.tick) * 1000
            self.worst_ms = max(self.worst_ms, stall)
            if stall > 50:
                self.over_50ms += 1


async def cancel(*tasks: asyncio.Task[Any]) -> None:
    """Cancel background tasks and wait for them to end."""
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
