"""Resuming the signal log from a saved offset (and ignoring one that does not fit the
file), and stopping the follower: by closing it, or by cancelling its consumer.

Every wait is a deadline on the next batch, never a sleep; the poll fallback is set far beyond
those deadlines (except where the test is about it), so a passing test was woken by an event.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from tests.unit.signal_follower_support import (
    DEADLINE,
    HEADER,
    NO_POLL,
    append,
    assert_nothing_left_running,
    follow,
    ids,
    primed,
    row,
)
from trader.signal_follower import FileOffset, SignalFollower

# --------------------------------------------------------------------------- resuming


async def test_a_restarted_follower_resumes_where_the_last_one_stopped(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")
    async with follow(log) as (_, stream):
        await primed(stream)
    assert stream.last is not None
    saved = stream.last.offset
    append(log, row("s2") + row("s3"))

    async with follow(log, start_offset=saved) as (_, stream):
        records = await stream.records(2)

    assert ids(records) == ["s2", "s3"]


async def test_a_saved_offset_that_does_not_fit_the_file_is_ignored(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}{row('s2')}")
    stat = log.stat()
    end = FileOffset(stat.st_dev, stat.st_ino, stat.st_size, tuple(HEADER.split(",")))
    misfits = [
        replace(end, inode=end.inode + 1),  # another file
        replace(end, offset=end.offset + 1),  # longer than the file
        replace(end, offset=end.offset - 3),  # in the middle of a line
        replace(end, header=()),  # no header to read the rows with
    ]

    for saved in misfits:
        async with follow(log, start_offset=saved) as (_, stream):
            assert ids(await stream.records(2)) == ["s1", "s2"], saved


# --------------------------------------------------------------------------- stopping


async def test_close_ends_the_iteration_of_a_waiting_consumer(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")
    follower = SignalFollower(log, poll_interval=NO_POLL)
    got_first = asyncio.Event()
    seen: list[str] = []

    async def consume() -> None:
        async for batch in follower.batches():
            seen.extend(ids(batch.records))
            got_first.set()

    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), DEADLINE)
    await asyncio.wait_for(follower.close(), DEADLINE)
    await asyncio.wait_for(consumer, DEADLINE)

    assert seen == ["s1"]
    assert_nothing_left_running()


async def test_cancelling_the_consumer_stops_the_watcher(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")
    follower = SignalFollower(log, poll_interval=NO_POLL)
    got_first = asyncio.Event()

    async def consume() -> None:
        async for _batch in follower.batches():
            got_first.set()

    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), DEADLINE)
    consumer.cancel()
    # Well inside watchfiles' own 5 s timeout: the stop event, not the timeout, ended it.
    done, _ = await asyncio.wait([consumer], timeout=2.0)

    assert done == {consumer}
    assert consumer.cancelled()
    assert_nothing_left_running()
