"""Reading the signal log's bytes as rows: where a reader stopped (``FileOffset``), what was
appended since, and the backlog, the rows already in the file when following starts.

Pure file reading and parsing, safe to run in a thread; ``signal_follower`` follows the file.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO

from trader.models import InvalidSignal, Signal
from trader.signal_row import parse_header, parse_line

__all__ = ["Backlog", "Batch", "FileOffset", "read_backlog", "split_log"]

logger = logging.getLogger(__name__)

Record = Signal | InvalidSignal


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
class Cursor:
    """What a reader knows about the file. Replaced, never mutated, so that a read that is
    cancelled half-way (in a thread) cannot leave it half-updated."""

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
READ_CHUNK = 1 << 20  # bytes per read while following: a huge append comes as several batches
BACKLOG_CHUNK = 1 << 18  # bytes of backlog per batch: ~2,000 rows, stored in one transaction
_MAX_LINE = 1 << 16  # a "line" this long with no newline is garbage, not a row being written
_TAIL = 128  # bytes of consumed log compared on each read; they end in a row's signal_id


def identity_of(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


def identity(path: Path) -> tuple[int, int] | None:
    try:
        return identity_of(os.stat(path))
    except OSError:
        return None


def _tail(handle: BinaryIO, offset: int) -> bytes:
    start = max(0, offset - _TAIL)
    handle.seek(start)
    return handle.read(offset - start)


def _resume(handle: BinaryIO, file: tuple[int, int], size: int, resume: FileOffset) -> Cursor:
    fits = (
        (resume.device, resume.inode) == file and bool(resume.header) and 0 < resume.offset <= size
    )
    if fits:
        tail = _tail(handle, resume.offset)
        # An offset in the middle of a line was not taken from this content.
        if tail.endswith(b"\n"):
            return Cursor(file, resume.offset, header=resume.header, tail=tail)
    return Cursor(file)


def _rewritten(handle: BinaryIO, cursor: Cursor, size: int) -> bool:
    """Whether the bytes we already consumed are gone: truncated, or written over in place
    (even by a new file that reuses the inode). Size alone misses a rewrite that is longer."""
    if size < cursor.end:
        return True
    handle.seek(cursor.offset - len(cursor.tail))
    return handle.read(len(cursor.tail) + len(cursor.partial)) != cursor.tail + cursor.partial


def read_step(
    path: Path, cursor: Cursor, resume: FileOffset | None
) -> tuple[Cursor, list[Record], bool]:
    """Read what was appended since ``cursor``: (new cursor, records, more bytes waiting)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        # Forget the old file: when one appears again it is read from its start.
        return Cursor(), [], False
    except OSError as exc:
        logger.warning("cannot open signal log %s: %s", path, exc)
        return cursor, [], False
    with handle:
        stat = os.fstat(handle.fileno())
        file, size = identity_of(stat), stat.st_size
        if not S_ISREG(stat.st_mode):
            # A device or a pipe (a link to /dev/zero, say) has no end to read up to: reading
            # it would spin. Said once, not read.
            if file != cursor.file:
                logger.warning("signal log %s is not a regular file; not reading it", path)
            return Cursor(file), [], False
        if file != cursor.file:
            cursor = Cursor(file) if resume is None else _resume(handle, file, size, resume)
        elif _rewritten(handle, cursor, size):
            logger.info("signal log %s was truncated or rewritten; reading it from the start", path)
            cursor = Cursor(file)
        handle.seek(cursor.end)
        chunk = handle.read(READ_CHUNK)
    more = len(chunk) == READ_CHUNK
    cursor, records = consume(cursor, cursor.partial + chunk)
    return cursor, records, more


def consume(cursor: Cursor, data: bytes) -> tuple[Cursor, list[Record]]:
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
    return Cursor(cursor.file, cursor.offset + cut, data[cut:], header, tail), records


# --------------------------------------------------------------------------- the backlog


@dataclass(frozen=True, slots=True)
class Backlog:
    """The rows a log held when following began, still to be recorded: from ``start`` (a
    stored offset that fits the file, else the file's beginning) up to ``end``."""

    path: Path
    start: FileOffset
    end: int  # just after the last complete row when following began


def split_log(path: Path, resume: FileOffset | None) -> tuple[Backlog | None, FileOffset | None]:
    """Where following starts, and the backlog before it: following resumes after the last
    complete row the file holds now, so that a row appended from here on is acted on at
    once, however long recording the rows before it takes. (None, ``resume``) when there is
    no backlog to record; the follower then resumes as it would have."""
    try:
        handle = path.open("rb")
    except OSError:
        return None, resume
    with handle:
        stat = os.fstat(handle.fileno())
        file = identity_of(stat)
        cursor = _resume(handle, file, stat.st_size, resume) if resume is not None else None
        if cursor is None or cursor.file != file or cursor.offset == 0:
            cursor = Cursor(file)
        end = _last_line_end(handle, stat.st_size)
        if end <= cursor.offset:
            return None, resume
        header = cursor.header if cursor.header is not None else _header(handle, end)
    if not header:
        return None, resume  # no row can be read without it: follow from the start as before
    start = FileOffset(*file, cursor.offset, header)
    return Backlog(path, start, end), FileOffset(*file, end, header)


def _header(handle: BinaryIO, end: int) -> tuple[str, ...]:
    """The header as ``consume`` reads it from the file's start: its first line that is not
    blank (after a byte-order mark)."""
    handle.seek(0)
    for index, line in enumerate(handle.read(min(end, _MAX_LINE)).split(b"\n")):
        line = line.rstrip(b"\r\n")
        if index == 0 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if line.strip():
            return parse_header(line)
    return ()


def _last_line_end(handle: BinaryIO, size: int) -> int:
    """The byte after the file's last newline (0 when it has none)."""
    position = size
    while position > 0:
        step = min(position, 1 << 16)
        handle.seek(position - step)
        found = handle.read(step).rfind(b"\n")
        if found >= 0:
            return position - step + found + 1
        position -= step
    return 0


async def read_backlog(backlog: Backlog) -> AsyncGenerator[Batch, None]:
    """The backlog's rows in batches of about ``BACKLOG_CHUNK`` bytes, read and parsed in a
    thread, the last chunk first: rows young enough to trade were written last. Each batch's
    offset is how far the backlog is read without a gap; the last batch, maybe empty, ends
    at its end. It reads the file ``split_log`` looked at (the same inode, even if the path
    has been replaced since); a file truncated meanwhile ends it early."""
    try:
        handle = await asyncio.to_thread(backlog.path.open, "rb")
    except OSError as exc:
        logger.warning("cannot read the signal log's backlog: %s", exc)
        return
    ahead: asyncio.Task[tuple[Cursor, list[Record]]] | None = None
    try:
        file = (backlog.start.device, backlog.start.inode)
        if identity_of(os.fstat(handle.fileno())) != file:
            logger.info("the signal log was replaced before its backlog was read")
            return
        end = backlog.end
        tail = await asyncio.to_thread(_tail_start, handle, backlog)
        if tail is not None:
            last = Cursor(file, tail, header=backlog.start.header)
            _, records = await asyncio.to_thread(_backlog_step, handle, last, end)
            yield Batch(records, backlog.start)
            end = tail
        header = backlog.start.header if backlog.start.offset else None
        cursor = Cursor(file, backlog.start.offset, header=header)
        ahead = _read_ahead(handle, cursor, end)
        while ahead is not None:
            read, records = await ahead
            if read.offset <= cursor.offset:  # truncated under us: what it held is gone
                logger.info("the signal log was truncated while its backlog was read")
                return
            cursor = read
            # The next chunk is parsed while the consumer stores this one.
            ahead = _read_ahead(handle, cursor, end)
            yield Batch(records, cursor.position())
        yield Batch([], FileOffset(*file, backlog.end, backlog.start.header))
    finally:
        if ahead is not None and not ahead.done():
            ahead.add_done_callback(lambda _: handle.close())  # after its thread is done
        else:
            handle.close()


def _read_ahead(
    handle: BinaryIO, cursor: Cursor, end: int
) -> asyncio.Task[tuple[Cursor, list[Record]]] | None:
    if cursor.offset >= end:
        return None
    task = asyncio.ensure_future(asyncio.to_thread(_backlog_step, handle, cursor, end))
    # Left behind when the consumer stops early: its failure then concerns no one.
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


def _tail_start(handle: BinaryIO, backlog: Backlog) -> int | None:
    """Where the backlog's last ``BACKLOG_CHUNK`` of rows starts (at a line's start), or None
    when the backlog is no longer than that."""
    near = backlog.end - BACKLOG_CHUNK
    if near <= backlog.start.offset:
        return None
    handle.seek(near - 1)
    found = handle.read(backlog.end - near + 1).find(b"\n")
    start = near + found if found >= 0 else backlog.end
    return start if start < backlog.end else None


def _backlog_step(handle: BinaryIO, cursor: Cursor, end: int) -> tuple[Cursor, list[Record]]:
    """The next chunk's complete rows; a line cut by the chunk is read again with the next."""
    handle.seek(cursor.offset)
    read, records = consume(cursor, handle.read(min(BACKLOG_CHUNK, end - cursor.offset)))
    return Cursor(read.file, read.offset, b"", read.header, read.tail), records
