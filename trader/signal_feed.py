"""The signal log fed to the engine: a row appended is acted on at once, while the rows the log
already held at start-up (the backlog) are recorded in bulk in the background; the offset
stored to resume from never passes a row that is not stored yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from trader.engine import Engine
from trader.ports import SettingsRepository
from trader.signal_file import Backlog, FileOffset, read_backlog, split_log
from trader.signal_follower import SignalFollower

__all__ = ["FOLLOWER_OFFSET_KEY", "SignalFeed"]

log = logging.getLogger(__name__)

FOLLOWER_OFFSET_KEY = "follower_offset"
FOLLOW_RETRY = 1.0  # seconds


class SignalFeed:
    """Follows the log at ``path`` into ``engine`` until cancelled; a failure (a locked
    database, say) starts it over from the stored offset, rows seen already deduplicated."""

    def __init__(
        self,
        path: Path,
        engine: Engine,
        repo: SettingsRepository,
        *,
        poll_interval: float = 1.0,
        retry: float = FOLLOW_RETRY,
    ) -> None:
        self._path = path
        self._engine = engine
        self._repo = repo
        self._poll_interval = poll_interval
        self._retry = retry
        self._split: tuple[Backlog | None, FileOffset | None] | None = None
        self.backlog_recorded = asyncio.Event()  # this run's backlog is stored (or there was none)

    async def open(self) -> None:
        """Note where following starts: after the last row the file holds now. A row appended
        from here on is acted on at once, never behind the rows before it, however many."""
        stored = stored_offset(await self._repo.get_setting(FOLLOWER_OFFSET_KEY))
        self._split = await asyncio.to_thread(split_log, self._path, stored)

    async def run(self) -> None:
        """Follow until cancelled (``open`` first, or the first session opens itself)."""
        while True:
            try:
                if self._split is None:
                    await self.open()
                await self._session()
            except Exception:
                log.exception("signal follower failed; restarting it in %s s", self._retry)
                self._split = None
                await asyncio.sleep(self._retry)

    async def _session(self) -> None:
        assert self._split is not None
        (backlog, start), self._split = self._split, None
        offsets = _Offsets(self._repo, self._engine, backlog)
        follower = SignalFollower(self._path, poll_interval=self._poll_interval, start_offset=start)
        async with asyncio.TaskGroup() as group:
            group.create_task(offsets.keep(), name="follower-offset")
            group.create_task(self._follow(follower, offsets), name="signal-follower")
            if backlog is not None:
                group.create_task(self._record(backlog, offsets), name="signal-backlog")
            else:
                self.backlog_recorded.set()

    async def _follow(self, follower: SignalFollower, offsets: _Offsets) -> None:
        # aclosing: a cancelled follower closes its generator now, not at GC time.
        async with contextlib.aclosing(follower.batches()) as batches:
            async for batch in batches:
                for record in batch.records:
                    await self._engine.handle_record(record)
                offsets.followed(batch.offset)

    async def _record(self, backlog: Backlog, offsets: _Offsets) -> None:
        started = time.perf_counter()
        tally: Counter[str] = Counter()
        async with contextlib.aclosing(read_backlog(backlog)) as batches:
            async for batch in batches:
                tally += await self._engine.record_backlog(batch.records)
                offsets.recorded(batch.offset)
        offsets.backlog_done()
        self.backlog_recorded.set()
        # One line for the lot, rather than one per row: a year of log is 300k rows.
        log.info(
            "signal log: %d rows it held when following began recorded in %.1f s (%s)",
            tally.total(),
            time.perf_counter() - started,
            ", ".join(f"{outcome} {count}" for outcome, count in tally.most_common()) or "none",
        )


class _Offsets:
    """The offset stored to resume from after a restart. It never passes a row that is not
    stored: while the backlog is recorded, it is the backlog's progress (appended rows after
    it, handled already, are read again and deduplicated after a crash); then the follower's.
    Written after the orders of the rows before it are sent, never competing with them."""

    def __init__(self, repo: SettingsRepository, engine: Engine, backlog: Backlog | None) -> None:
        self._repo = repo
        self._engine = engine
        self._backlog = backlog.start if backlog is not None else None
        self._recording = backlog is not None
        self._followed: FileOffset | None = None
        self._written: FileOffset | None = None
        self._changed = asyncio.Event()

    def recorded(self, offset: FileOffset) -> None:
        self._backlog = offset
        self._changed.set()

    def backlog_done(self) -> None:
        self._recording = False
        self._changed.set()

    def followed(self, offset: FileOffset) -> None:
        self._followed = offset
        self._changed.set()

    async def keep(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            target = self._backlog if self._recording else (self._followed or self._backlog)
            if not await self._engine.entries.settled():
                # An entry ended without storing its signal: start over from the offset stored,
                # so that its row is read, and decided, again.
                raise RuntimeError("an entry ended before its signal was stored")
            if target is not None and target != self._written:
                await self._repo.set_setting(FOLLOWER_OFFSET_KEY, json.dumps(asdict(target)))
                self._written = target


def stored_offset(text: str | None) -> FileOffset | None:
    if not text:
        return None
    try:
        return FileOffset(**json.loads(text))
    except (TypeError, ValueError):
        log.warning("ignoring an unreadable stored follower offset")
        return None
