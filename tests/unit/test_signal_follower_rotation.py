"""Following the signal log as another process truncates, rewrites or replaces it, or
creates it (and its directory) late, or removes its directory and makes it again.

Every wait is a deadline on the next batch, never a sleep; the poll fallback is set far beyond
those deadlines (except where the test is about it), so a passing test was woken by an event.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from tests.unit.signal_follower_support import HEADER, append, follow, ids, primed, row
from trader.models import Signal


async def test_a_truncated_file_is_read_again_from_its_header(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}{row('s2')}{row('s3')}")

    async with follow(log) as (_, stream):
        assert ids(await stream.records(3)) == ["s1", "s2", "s3"]
        log.write_text(f"{HEADER}\n{row('s4')}")  # shorter than what was read
        records = await stream.records(1)

    assert ids(records) == ["s4"]
    assert isinstance(records[0], Signal)


async def test_a_file_rewritten_in_place_longer_than_before_is_read_from_its_start(
    tmp_path: Path,
) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")

    async with follow(log) as (_, stream):
        await primed(stream)
        inode = log.stat().st_ino
        # Same inode, and longer: only the bytes already read tell that it changed.
        log.write_text(f"{HEADER}\n{row('r1')}{row('r2')}{row('r3')}")
        assert log.stat().st_ino == inode
        records = await stream.records(3)

    assert ids(records) == ["r1", "r2", "r3"]


async def test_a_file_replaced_by_rename_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")
    fresh = tmp_path / "signals_log.csv.tmp"
    # The new file is longer than the old one: only the inode tells it apart.
    fresh.write_text(f"{HEADER}\n{row('s1')}{row('s2')}{row('s3')}")

    async with follow(log) as (_, stream):
        await primed(stream)
        os.replace(fresh, log)
        records = await stream.records(3)

    # Rows seen before come again: the engine dedupes by id.
    assert ids(records) == ["s1", "s2", "s3"]
    assert stream.last is not None
    assert stream.last.offset.inode == log.stat().st_ino


async def test_a_file_created_after_start_is_read(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"

    async with follow(log) as (_, stream):
        waiting = asyncio.ensure_future(stream.next_batch())
        await asyncio.sleep(0)  # a turn of the loop, so the follower starts first (usually)
        log.write_text(f"{HEADER}\n{row('s1')}")
        batch = await waiting

    assert ids(batch.records) == ["s1"]


async def test_a_log_whose_directory_does_not_exist_yet_is_found_by_polling(
    tmp_path: Path,
) -> None:
    log = tmp_path / "later" / "signals_log.csv"

    async with follow(log, poll_interval=0.05) as (_, stream):
        waiting = asyncio.ensure_future(stream.next_batch())
        await asyncio.sleep(0)
        log.parent.mkdir()
        log.write_text(f"{HEADER}\n{row('s1')}")
        assert ids((await waiting).records) == ["s1"]
        # Once the directory exists, appends are seen by events as well.
        append(log, row("s2"))
        assert ids(await stream.records(1)) == ["s2"]


async def test_a_log_whose_directory_is_removed_and_made_again_is_still_followed(
    tmp_path: Path,
) -> None:
    log = tmp_path / "logs" / "signals_log.csv"
    log.parent.mkdir()
    log.write_text(f"{HEADER}\n{row('s1')}")

    async with follow(log, poll_interval=0.05) as (_, stream):
        await primed(stream)
        shutil.rmtree(log.parent)
        log.parent.mkdir()
        log.write_text(f"{HEADER}\n{row('s2')}")
        assert ids(await stream.records(1)) == ["s2"]
        append(log, row("s3"))
        assert ids(await stream.records(1)) == ["s3"]
