"""Helpers shared by the signal follower's tests: rows of the signal log, appending to it,
and following it with a deadline on every wait.

Every wait is a deadline on the next batch, never a sleep; the poll fallback is set far beyond
those deadlines (except where the test is about it), so a passing test was woken by an event.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path

from trader.models import InvalidSignal, Signal
from trader.signal_follower import Batch, FileOffset, SignalFollower

HEADER = "timestamp,symbol,interval,verdict,confidence,entry_price,ttl_minutes,signal_id"
DEADLINE = 5.0  # seconds to wait for a batch that should come in milliseconds
NO_POLL = 60.0  # a poll interval no test waits for

Record = Signal | InvalidSignal


def row(signal_id: str, *, symbol: str = "ETHUSDT", confidence: str = "0.9", **extra: str) -> str:
    values = {
        "timestamp": "2025-10-19 05:25:03",
        "symbol": symbol,
        "interval": "5m",
        "verdict": "BUY",
        "confidence": confidence,
        "entry_price": "3906.26",
        "ttl_minutes": "15",
        "signal_id": signal_id,
        **extra,
    }
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values.values())
    return out.getvalue()


def append(path: Path, data: str | bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def ids(records: list[Record]) -> list[str]:
    return [record.id for record in records]


class Stream:
    """The consumer's side of ``batches()``, with a deadline on every wait."""

    def __init__(self, batches: AsyncGenerator[Batch, None]) -> None:
        self._batches = batches
        self.last: Batch | None = None

    async def next_batch(self) -> Batch:
        self.last = await asyncio.wait_for(anext(self._batches), DEADLINE)
        return self.last

    async def records(self, count: int) -> list[Record]:
        """The next ``count`` records, however the follower splits them into batches."""
        records: list[Record] = []
        while len(records) < count:
            records += (await self.next_batch()).records
        assert len(records) == count, "more rows than were written"
        return records


@asynccontextmanager
async def follow(
    path: Path, *, poll_interval: float = NO_POLL, start_offset: FileOffset | None = None
) -> AsyncIterator[tuple[SignalFollower, Stream]]:
    follower = SignalFollower(path, poll_interval=poll_interval, start_offset=start_offset)
    async with aclosing(follower.batches()) as batches:
        yield follower, Stream(batches)
    assert_nothing_left_running()


def assert_nothing_left_running() -> None:
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def primed(stream: Stream) -> None:
    """Wait for the first row, which proves the follower is running before the test writes."""
    assert ids(await stream.records(1)) == ["s1"]
