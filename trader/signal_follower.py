"""Following the signal log, ``signals_log.csv``, as another process appends to it: woken by
inotify on the event loop as soon as a row is written, read from where we stopped (resumable
after a restart), polled as a fallback where inotify is unavailable.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator
from contextlib import suppress
from pathlib import Path

from trader.models import InvalidSignal, Signal
from trader.signal_file import Batch, Cursor, FileOffset, identity, identity_of, read_step

__all__ = ["Batch", "FileOffset", "SignalFollower"]

logger = logging.getLogger(__name__)

Record = Signal | InvalidSignal

_INLINE_READ_LIMIT = 1 << 16  # larger appends are read in a thread, off the event loop


# --------------------------------------------------------------------------- following


class SignalFollower:
    """Follows a CSV signal log that another process appends to.

    Woken by inotify events on the parent directory (a fraction of a millisecond after a
    write), with a ``poll_interval`` poll as the fallback for missed events, a missing
    directory, or a system without inotify.
    Consume it with ``async with contextlib.aclosing(follower.batches()) as batches``.
    Rows may be yielded again after the file is truncated or replaced: callers dedupe by id.
    """

    def __init__(
        self,
        path: Path,
        *,
        poll_interval: float = 1.0,
        start_offset: FileOffset | None = None,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self._path = Path(path)
        self._poll_interval = poll_interval
        self._resume = start_offset
        self._cursor = Cursor()
        self._closed = asyncio.Event()
        self._wake: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def path(self) -> Path:
        return self._path

    async def batches(self) -> AsyncGenerator[Batch, None]:
        """Yield the rows already in the file, then each row as it is appended, until
        ``close()`` or until the consumer stops (cancels, or closes this generator)."""
        if self._watcher is not None:
            raise RuntimeError("this SignalFollower is already being iterated")
        wake = asyncio.Event()
        armed = asyncio.Event()
        watcher = asyncio.create_task(
            watch_directory(self._path, wake, armed, self._poll_interval),
            name=f"watch {self._path.name}",
        )
        self._wake, self._watcher = wake, watcher
        try:
            # Let the watcher arm its watch before the first read, so that a row appended just
            # after that read wakes us rather than waiting for the poll.
            with suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await armed.wait()
            while not self._closed.is_set():
                # Cleared before reading: a write during the read leaves it set for next time.
                wake.clear()
                records, more = await self._read()
                if records:
                    yield Batch(records, self._cursor.position())
                if more or self._closed.is_set():
                    await asyncio.sleep(0)  # a long file never starves the loop
                    continue
                with suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await wake.wait()
        finally:
            self._wake = self._watcher = None
            watcher.cancel()
            await asyncio.wait([watcher])

    async def close(self) -> None:
        """Stop following: the ``batches()`` iteration ends at its next wait."""
        self._closed.set()
        if self._wake is not None:
            self._wake.set()
        if self._watcher is not None:
            watcher = self._watcher
            watcher.cancel()
            await asyncio.wait([watcher])

    async def _read(self) -> tuple[list[Record], bool]:
        cursor = self._cursor
        try:
            stat = os.stat(self._path)
        except OSError:
            backlog = 0
        else:
            same_file = identity_of(stat) == cursor.file
            backlog = stat.st_size - cursor.end if same_file else stat.st_size
        if cursor.file is None or backlog > _INLINE_READ_LIMIT:
            result = await asyncio.to_thread(read_step, self._path, cursor, self._resume)
        else:
            # A few appended rows: reading them here is quicker than a thread hop.
            result = read_step(self._path, cursor, self._resume)
        # Committed only now, so a read cancelled while in its thread changes nothing.
        self._cursor, records, more = result
        if self._cursor.file is not None:
            self._resume = None  # it was for the first file we opened, and only that one
        return records, more


# --------------------------------------------------------------------------- waking up


async def watch_directory(
    path: Path, wake: asyncio.Event, armed: asyncio.Event, poll_interval: float
) -> None:
    """Set ``wake`` on every change to ``path`` until cancelled; ``armed`` once a watch is
    in place (or none can be). Never raises: where inotify cannot watch, the poll remains."""
    directory = path.parent.absolute()
    warned = False
    while True:
        watched = identity(directory)
        if watched is not None:
            try:
                await _watch_until_replaced(
                    directory, path.name, watched, wake, armed, poll_interval
                )
                continue  # the directory was replaced: watch the new one
            except Exception as exc:
                # No inotify here (another OS), or its limits reached: the poll still works.
                log = logger.debug if warned else logger.warning
                log("cannot watch %s (%s); polling every %ss", directory, exc, poll_interval)
                warned = True
        armed.set()
        await asyncio.sleep(poll_interval)


async def _watch_until_replaced(
    directory: Path,
    name: str,
    watched: tuple[int, int],
    wake: asyncio.Event,
    armed: asyncio.Event,
    recheck: float,
) -> None:
    """Wake on changes to ``name`` in ``directory`` until the directory goes away."""
    from asyncinotify import Inotify, Mask  # Linux only: elsewhere the poll covers

    ours = Mask.MODIFY | Mask.CREATE | Mask.MOVED_TO | Mask.MOVED_FROM | Mask.DELETE
    gone = Mask.DELETE_SELF | Mask.MOVE_SELF | Mask.IGNORED | Mask.UNMOUNT
    with Inotify() as inotify:
        inotify.add_watch(directory, ours | gone | Mask.ONLYDIR)
        # The file may have changed before the watch was armed: make the reader look once.
        wake.set()
        armed.set()
        while True:
            # A watch dies silently when its directory is replaced by another of the same
            # name: wake up now and then to check that it is still the same one.
            try:
                async with asyncio.timeout(recheck):
                    event = await inotify.get()
            except TimeoutError:
                if identity(directory) != watched:
                    return
                continue
            if event.mask & (gone | Mask.Q_OVERFLOW) or (
                event.name is not None and str(event.name) == name
            ):
                wake.set()
            if event.mask & gone:
                return
