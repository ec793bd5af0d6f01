"""``make bench``, 2 ms to the order: append → market order received by the fake Bybit (live,
real pybit, loopback) for whitelisted symbols seen before, p50 and p95, and where the time goes
piece by piece; paper mode too (append → the paper venue's order, and → position stored).

The pieces are timed by wrapping the product's own methods (``perf_counter`` on entry and
exit), so the same module measures the code before issue 11
(``PYTHONPATH=/work/before python -m benchmarks.latency``):
each piece is the median over the signals of its time since the row was appended.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    SYMBOLS,
    append,
    bench_settings,
    buy_row,
    entry_order,
    percentile,
    scratch,
    spread,
    trading,
)
from storage.repositories import SqliteRepositories
from tests.fakes.bybit import FakeBybit
from trader.engine import Engine
from trader.entries import Entries
from trader.exchange.bybit import BybitExchange
from trader.exchange.paper import PaperExchange
from trader.signal_follower import SignalFollower

WARM_UP = 6  # one signal per symbol first: every symbol is then one seen before


class Marks:
    """Per signal: the first time each labelled point was reached after the append."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self.runs: list[dict[str, float]] = []
        self.recording = False

    def hit(self, label: str) -> None:
        if self.recording:
            self.current.setdefault(label, time.perf_counter())

    def begin(self) -> float:
        self.current = {}
        self.recording = True
        started = time.perf_counter()
        self.current["append"] = started
        return started

    def stop(self) -> None:
        """What follows (closing the position for the next turn) is not this signal's."""
        self.recording = False

    def keep(self, **extra: float) -> None:
        self.current.update(extra)
        self.runs.append(self.current)


def _wrap(marks: Marks, cls: type, name: str, label: str) -> Callable[[], None]:
    """Time ``cls.name`` (if it exists in this version of the code); returns the undo."""
    original = cls.__dict__.get(name) or getattr(cls, name, None)
    if original is None:
        return lambda: None
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            marks.hit(f"{label}>")
            try:
                return await original(*args, **kwargs)
            finally:
                marks.hit(f"{label}<")

    else:

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            marks.hit(f"{label}>")
            try:
                return original(*args, **kwargs)
            finally:
                marks.hit(f"{label}<")

    had_own = name in cls.__dict__
    setattr(cls, name, timed)

    def undo() -> None:
        if had_own:
            setattr(cls, name, original)
        else:
            delattr(cls, name)

    return undo


def instrument(marks: Marks) -> Callable[[], None]:
    points = [
        (SignalFollower, "_read", "read"),
        (Engine, "handle_record", "handle"),
        (Entries, "_place", "place"),
        (BybitExchange, "prepare_entry", "prepare"),
        (PaperExchange, "prepare_entry", "prepare"),
        (SqliteRepositories, "record_signal", "db.signal"),
        (SqliteRepositories, "add_order", "db.order"),
        (SqliteRepositories, "add_entry_order", "db.signal+order"),
        (SqliteRepositories, "set_setting", "db.offset"),
        (BybitExchange, "open", "open"),
        (PaperExchange, "open", "open"),
    ]
    undos = [_wrap(marks, cls, name, label) for cls, name, label in points]
    return lambda: [undo() for undo in reversed(undos)] and None


async def signal_to_order(*, live: bool, signals: int = 100) -> Marks:
    """Append ``signals`` BUY rows one at a time (each symbol closed before its next turn)."""
    marks = Marks()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        strategy = {
            "parameters": {"leverage": 10, "sl": 20, "tp": 40},
            "top_coins": list(SYMBOLS),  # prepared at start-up: the order is the first call
            "paper_balance_usdt": 100000,
            "max_open_positions": 1000,
        }
        log_path = scratch(work, strategy)
        async with FakeBybit() as fake, trading(bench_settings(work, fake, live=live)) as bot:
            undo = instrument(marks)
            try:
                for i in range(WARM_UP + signals):
                    symbol = SYMBOLS[i % len(SYMBOLS)]
                    mark = len(fake.requests)
                    row = buy_row(symbol, f"lat-{i}")
                    marks.begin()
                    append(log_path, row)
                    filled = await asyncio.wait_for(bot.opened.get(), timeout=10)
                    await asyncio.sleep(0.02)  # the follower's offset write, if it comes after
                    marks.stop()
                    extra = {"filled": filled.at}
                    if live:
                        order = fake.requests[await entry_order(fake, mark)]
                        # The fake stamps a request with time.monotonic(), perf_counter's clock.
                        extra["received"] = order.at
                    await bot.runtime.engine.close(symbol)  # free the symbol for its next turn
                    await bot.runtime.engine.wait_idle()
                    if i >= WARM_UP:
                        marks.keep(**extra)
            finally:
                undo()
    return marks


def _since_append(marks: Marks, label: str) -> list[float]:
    return [(run[label] - run["append"]) * 1000 for run in marks.runs if label in run]


def report(marks: Marks, *, live: bool) -> tuple[float, float]:
    end = "received" if live else "open>"
    to_order = _since_append(marks, end)
    venue = "order received by the fake Bybit" if live else "the paper venue's order"
    print(f"  append -> {venue} ({len(to_order)} signals, symbols seen before):")
    print(f"    {spread(to_order, digits=2)}   (target p50 <= 3, p95 <= 6)")
    print("  where the time goes (median ms since the append, each point reached first):")
    labels = [
        ("read>", "woken: the follower reads the file"),
        ("read<", "row read and parsed"),
        ("handle>", "engine.handle_record"),
        ("db.signal>", "signal write (own transaction) starts"),
        ("db.signal<", "signal write done"),
        ("place>", "entry task runs"),
        ("prepare>", "prepare_entry starts"),
        ("prepare<", "prepare_entry done"),
        ("db.offset>", "follower's offset write starts"),
        ("db.offset<", "follower's offset write done"),
        ("db.order>", "order write (own transaction) starts"),
        ("db.order<", "order write done"),
        ("db.signal+order>", "signal + order write (one transaction) starts"),
        ("db.signal+order<", "signal + order write done"),
        ("open>", "exchange.open: the order is sent"),
        ("received", "order received by Bybit"),
        ("open<", "fill known"),
        ("filled", "position stored, event out"),
    ]
    reached = []
    for label, meaning in labels:
        values = _since_append(marks, label)
        if len(values) * 2 >= len(marks.runs):  # reached by most signals in this version
            reached.append((statistics.median(values), meaning))
    for median, meaning in sorted(reached):
        print(f"    {median:7.3f}  {meaning}")
    return percentile(to_order, 50), percentile(to_order, 95)


async def run() -> int:
    print("latency, append -> order (issue 11 point 4):")
    print("live against the fake Bybit (signed REST, private stream, real pybit):")
    p50, p95 = report(await signal_to_order(live=True), live=True)
    print("paper (public market data from the fake):")
    report(await signal_to_order(live=False), live=False)
    return 0 if p50 <= 3 and p95 <= 6 else 1


def main() -> int:
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
