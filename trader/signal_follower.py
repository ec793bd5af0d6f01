"""Following the signal log, ``signals_log.csv``, as another process appends to it: woken by
file-system events, read from where we stopped (resumable after a restart), polled as a fallback.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator
from contextlib import aclosing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from watchfiles import awatch

from trader.models import InvalidSignal, Signal
from trader.signal_row import parse_header, parse_line

__all__ = ["Batch", "FileOffset", "SignalFollower"]

logger = logging.getLogger(__name__)

Record = Signal | InvalidSignal


# --------------------------------------------------------------------------- reading the file


@dataclass(frozen=True, slots=True)
class FileOffset:
    """Where a follower stopped: which file (device, inode), the byte after the last complete
    row it read, and that file's header. Persist it to resume after a restart."""

    device: int
    inode: int
    offset: int
    header: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # It is usually read back from JSON: a list for the header, anything for the rest.
        numbers = (self.device, self.inode, self.offset)
        if not all(type(n) is int and n >= 0 for n in numbers):
            raise ValueError(f"FileOffset needs non-negative integers, got {numbers!r}")
        header = tuple(self.header)
        if not all(isinstance(name, str) for name in header):
            raise ValueError("FileOffset.header must be column names")
        object.__setattr__(self, "header", header)


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows read in one go, and the position after them."""

    records: list[Signal | InvalidSignal]
    offset: FileOffset


@dataclass(frozen=True, slots=True)
class _Cursor:
    """What the follower knows about the file. Replaced, never mutated, so that a read that
    is cancelled half-way (in a thread) cannot leave it half-updated."""

    file: tuple[int, int] | None = None  # (device, inode)
    offset: int = 0  # just after the last complete line consumed
    partial: bytes = b""  # bytes after ``offset``: a line still being written
    header: tuple[str, ...] | None = None
    tail: bytes = b""  # the last bytes before ``offset``, to notice the file was rewritten

    @property
    def end(self) -> int:
        return self.offset + len(self.partial)

    def position(self) -> FileOffset:
        device, inode = self.file or (0, 0)
        return FileOffset(device, inode, self.offset, self.header or ())


_BOM = b"\xef\xbb\xbf"
_READ_CHUNK = 1 << 20  # bytes per read: a huge backlog comes as several batches
_MAX_LINE = 1 << 16  # a "line" this long with no newline is garbage, not a row being written
_INLINE_READ_LIMIT = 1 << 16  # larger backlogs are read in a thread, off the event loop
_TAIL = 128  # bytes of consumed log compared on each read; they end in a row's signal_id


def _tail(handle: BinaryIO, offset: int) -> bytes:
    start = max(0, offset - _TAIL)
    handle.seek(start)
    return handle.read(offset - start)


def _resume(handle: BinaryIO, file: tuple[int, int], size: int, resume: FileOffset) -> _Cursor:
    fits = (
        (resume.device, resume.inode) == file and bool(resume.header) and 0 < resume.offset <= size
    )
    if fits:
        tail = _tail(handle, resume.offset)
        # An offset in the middle of a line was not taken from this content.
        if tail.endswith(b"\n"):
            return _Cursor(file, resume.offset, header=resume.header, tail=tail)
    return _Cursor(file)


def _rewritten(handle: BinaryIO, cursor: _Cursor, size: int) -> bool:
    """Whether the bytes we already consumed are gone: truncated, or written over in place
    (even by a new file that reuses the inode). Size alone misses a rewrite that is longer."""
    if size < cursor.end:
        return True
    handle.seek(cursor.offset - len(cursor.tail))
    return handle.read(len(cursor.tail) + len(cursor.partial)) != cursor.tail + cursor.partial


def _read_step(
    path: Path, cursor: _Cursor, resume: FileOffset | None
) -> tuple[_Cursor, list[Record], bool]:
    """Read what was appended since ``cursor``: (new cursor, records, more bytes waiting).

    Pure apart from reading the file, so it may run in a thread.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        # Forget the old file: when one appears again it is read from its start.
        return _Cursor(), [], False
    except OSError as exc:
        logger.warning("cannot open signal log %s: %s", path, exc)
        return cursor, [], False
    with handle:
        stat = os.fstat(handle.fileno())
        file, size = _identity_of(stat), stat.st_size
        if file != cursor.file:
            cursor = _Cursor(file) if resume is None else _resume(handle, file, size, resume)
        elif _rewritten(handle, cursor, size):
            logger.info("signal log %s was truncated or rewritten; reading it from the start", path)
            cursor = _Cursor(file)
        handle.seek(cursor.end)
        chunk = handle.read(_READ_CHUNK)
    more = len(chunk) == _READ_CHUNK
    cursor, records = _consume(cursor, cursor.partial + chunk)
    return cursor, records, more


def _consume(cursor: _Cursor, data: bytes) -> tuple[_Cursor, list[Record]]:
    """Parse the complete lines in ``data`` (which starts at ``cursor.offset``)."""
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) > _MAX_LINE:
        cut = len(data)  # never going to be a row: report it rather than buffer forever
    header = cursor.header
    records: list[Record] = []
    pos = 0
    # Split on \n only: a stray \r inside a row is the row's business, not a line break.
    while pos < cut:
        end = data.find(b"\n", pos, cut) + 1 or cut
        line, at_file_start = data[pos:end].rstrip(b"\r\n"), cursor.offset + pos == 0
        pos = end
        if at_file_start and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if not line.strip():
            continue
        if header is None:
            header = parse_header(line)
            continue
        record = parse_line(line, header)
        if record is not None:
            records.append(record)
    consumed = data[:cut]
    tail = consumed[-_TAIL:] if len(consumed) >= _TAIL else (cursor.tail + consumed)[-_TAIL:]
    return _Cursor(cursor.file, cursor.offset + cut, data[cut:], header, tail), records


# --------------------------------------------------------------------------- following


class SignalFollower:
    """Follows a CSV signal log that another process appends to.

    Woken by file-system events on the parent directory (a few ms after a write), with a
    ``poll_interval`` poll as the fallback for missed events or a missing directory.
    Consume it with ``async with contextlib.aclosing(follower.batches()) as batches``.
    Rows may be yielded again after the file is truncated or replaced: callers dedupe by id.
    """

    # How watchfiles groups events: check every _WATCH_STEP_MS, give up waiting for a burst
    # to settle after _WATCH_DEBOUNCE_MS. Both bound the latency from append to batch.
    _WATCH_STEP_MS = 3
    _WATCH_DEBOUNCE_MS = 15

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
        self._cursor = _Cursor()
        self._closed = asyncio.Event()
        self._wake: asyncio.Event | None = None
        self._stop_watching: asyncio.Event | None = None
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
        stop = asyncio.Event()
        watcher = asyncio.create_task(
            self._watch_directory(wake, stop), name=f"watch {self._path.name}"
        )
        self._wake, self._stop_watching, self._watcher = wake, stop, watcher
        try:
            # Let the watcher arm its watch before the first read, so that a row appended just
            # after that read wakes us rather than waiting for the poll.
            await asyncio.sleep(0)
            while not self._closed.is_set():
                # Cleared before reading: a write during the read leaves it set for next time.
                wake.clear()
                records, more = await self._read()
                if records:
                    yield Batch(records, self._cursor.position())
                if more or self._closed.is_set():
                    continue
                with suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await wake.wait()
        finally:
            stop.set()
            self._wake = self._stop_watching = self._watcher = None
            # The watcher ends within a step of the stop event: watchfiles checks it.
            await watcher

    async def close(self) -> None:
        """Stop following: the ``batches()`` iteration ends at its next wait."""
        self._closed.set()
        if self._wake is not None:
            self._wake.set()
        if self._stop_watching is not None:
            self._stop_watching.set()
        if self._watcher is not None:
            await asyncio.shield(self._watcher)

    async def _read(self) -> tuple[list[Record], bool]:
        cursor = self._cursor
        try:
            stat = os.stat(self._path)
        except OSError:
            backlog = 0
        else:
            same_file = _identity_of(stat) == cursor.file
            backlog = stat.st_size - cursor.end if same_file else stat.st_size
        if cursor.file is None or backlog > _INLINE_READ_LIMIT:
            result = await asyncio.to_thread(_read_step, self._path, cursor, self._resume)
        else:
            # A few appended rows: reading them here is quicker than a thread hop.
            result = _read_step(self._path, cursor, self._resume)
        # Committed only now, so a read cancelled while in its thread changes nothing.
        self._cursor, records, more = result
        if self._cursor.file is not None:
            self._resume = None  # it was for the first file we opened, and only that one
        return records, more

    async def _watch_directory(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        """Set ``wake`` on every change to our file, until ``stop``. Never raises."""
        directory = self._path.parent.absolute()
        warned = False
        while not stop.is_set():
            armed = _identity(directory)
            if armed is not None:
                try:
                    await self._watch_until_replaced(directory, armed, wake, stop)
                    continue  # stopped, or the directory was replaced: watch the new one
                except Exception as exc:
                    # Inotify limits and the like: the poll still works.
                    log = logger.debug if warned else logger.warning
                    log(
                        "cannot watch %s (%s); polling every %ss",
                        directory,
                        exc,
                        self._poll_interval,
                    )
                    warned = True
            with suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await stop.wait()

    async def _watch_until_replaced(
        self,
        directory: Path,
        armed: tuple[int, int],
        wake: asyncio.Event,
        stop: asyncio.Event,
    ) -> None:
        name, directory_name = self._path.name, str(directory)

        def concerns_us(_change: object, path: str) -> bool:
            return path == directory_name or os.path.basename(path) == name

        # A watch dies silently with its directory, so wake up now and then to check that it
        # is still the same one.
        changes = awatch(
            directory,
            watch_filter=concerns_us,
            debounce=self._WATCH_DEBOUNCE_MS,
            step=self._WATCH_STEP_MS,
            stop_event=stop,
            rust_timeout=max(50, int(self._poll_interval * 1000)),
            yield_on_timeout=True,
            recursive=False,
        )
        async with aclosing(changes):
            # The watch is armed on the first step of the iteration, but the file may have
            # appeared before it: make the reader look once.
            wake.set()
            async for changed in changes:
                if changed:
                    wake.set()
                if _identity(directory) != armed:
                    return


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        return _identity_of(os.stat(path))
    except OSError:
        return None


def _identity_of(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino
