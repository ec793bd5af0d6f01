"""Catching up with the signal log: where following starts (after the last complete row at
start-up), the backlog before it read tail first in chunks with every row exactly once, rows
decided on sight stored in bulk, and a signal stored with its pending order in one
transaction or not at all.
"""

from __future__ import annotations

import sqlite3
from contextlib import aclosing
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import trader.signal_file as signal_file
from storage.repositories import SqliteRepositories
from tests.unit.signal_follower_support import HEADER, append, row
from tests.unit.storage_support import T0, make_signal, repo, scalar
from trader.models import InvalidSignal, Side, Signal
from trader.ports import OrderRecord, OrderStatus
from trader.rules import outcome_on_sight
from trader.signal_file import Backlog, Batch, FileOffset, read_backlog, split_log
from trader.strategy import Strategy

__all__ = ["repo"]  # fixtures


async def batches_of(backlog: Backlog) -> list[Batch]:
    async with aclosing(read_backlog(backlog)) as batches:
        return [batch async for batch in batches]


def ids(batches: list[Batch]) -> list[str]:
    return [record.id for batch in batches for record in batch.records]


def pending(signal_id: str, link_id: str = "") -> OrderRecord:
    return OrderRecord(
        link_id=link_id or f"e-{signal_id}",
        signal_id=signal_id,
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("1.5"),
        reduce_only=False,
        status=OrderStatus.PENDING,
        created_at=T0,
    )


# --------------------------------------------------------------------------- where it starts


def test_following_starts_after_the_last_complete_row_and_the_rest_is_backlog(
    tmp_path: Path,
) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}{row('s2')}2025-10-19 05:2")  # a row being written

    backlog, start = split_log(log, None)

    assert backlog is not None
    assert start is not None
    complete = len(f"{HEADER}\n{row('s1')}{row('s2')}".encode())
    assert (backlog.start.offset, backlog.end, start.offset) == (0, complete, complete)
    assert start.header == tuple(HEADER.split(","))
    stat = log.stat()
    assert (start.device, start.inode) == (stat.st_dev, stat.st_ino)


def test_a_stored_offset_that_fits_starts_the_backlog_there(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")
    stat = log.stat()
    stored = FileOffset(stat.st_dev, stat.st_ino, stat.st_size, tuple(HEADER.split(",")))
    append(log, row("s2"))

    backlog, start = split_log(log, stored)

    assert backlog is not None
    assert backlog.start == stored
    assert start is not None
    assert start.offset == log.stat().st_size


def test_no_backlog_when_the_stored_offset_is_at_the_end_or_there_is_no_file(
    tmp_path: Path,
) -> None:
    log = tmp_path / "signals_log.csv"
    assert split_log(log, None) == (None, None)
    log.write_text(f"{HEADER}\n{row('s1')}")
    stat = log.stat()
    stored = FileOffset(stat.st_dev, stat.st_ino, stat.st_size, tuple(HEADER.split(",")))
    assert split_log(log, stored) == (None, stored)


# --------------------------------------------------------------------------- reading it


async def test_the_backlog_is_read_tail_first_every_row_once_ending_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signal_file, "BACKLOG_CHUNK", 2048)  # several chunks of ~20 rows
    log = tmp_path / "signals_log.csv"
    names = [f"s{i:03d}" for i in range(300)]
    log.write_text(HEADER + "\n" + "".join(row(name) for name in names))
    backlog, _ = split_log(log, None)
    assert backlog is not None

    batches = await batches_of(backlog)

    read = ids(batches)
    assert sorted(read) == names  # every row, once
    tail = [record.id for record in batches[0].records]
    assert tail == names[-len(tail) :]  # the youngest rows come first
    assert batches[0].offset == backlog.start  # no progress claimed past a gap
    assert len(batches) > 3
    offsets = [batch.offset.offset for batch in batches[1:]]
    assert offsets == sorted(offsets)
    assert offsets[-1] == backlog.end == log.stat().st_size
    assert all(batch.offset.header == tuple(HEADER.split(",")) for batch in batches[1:])


async def test_a_backlog_resumed_mid_file_reads_only_what_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signal_file, "BACKLOG_CHUNK", 1024)
    log = tmp_path / "signals_log.csv"
    log.write_text(HEADER + "\n" + "".join(row(f"a{i}") for i in range(50)))
    stat = log.stat()
    stored = FileOffset(stat.st_dev, stat.st_ino, stat.st_size, tuple(HEADER.split(",")))
    append(log, "".join(row(f"b{i}") for i in range(50)))

    backlog, _ = split_log(log, stored)
    assert backlog is not None

    assert sorted(ids(await batches_of(backlog))) == sorted(f"b{i}" for i in range(50))


async def test_a_file_replaced_before_its_backlog_is_read_yields_nothing(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")
    backlog, _ = split_log(log, None)
    assert backlog is not None
    replacement = tmp_path / "new.csv"
    replacement.write_text(f"{HEADER}\n{row('other')}")
    replacement.replace(log)

    assert await batches_of(backlog) == []


# --------------------------------------------------------------------------- deciding on sight


def test_rows_decided_on_sight_are_invalid_a_verdict_never_traded_or_stale() -> None:
    strategy = Strategy()
    fresh = make_signal("fresh")
    now = fresh.timestamp + timedelta(seconds=30)

    assert outcome_on_sight(InvalidSignal("x", "bad_row"), now, strategy) == "invalid:bad_row"
    hold = Signal(**{**_fields(fresh), "id": "hold", "verdict": "HOLD"})
    assert outcome_on_sight(hold, now, strategy) == "filtered:verdict"
    assert outcome_on_sight(fresh, now + timedelta(hours=1), strategy) == "filtered:stale"
    assert outcome_on_sight(fresh, now, strategy) is None  # the engine judges it


def _fields(signal: Signal) -> dict[str, object]:
    return {name: getattr(signal, name) for name in Signal.__dataclass_fields__}


# --------------------------------------------------------------------------- storing


async def test_decided_rows_are_stored_in_bulk_and_known_ids_are_left_alone(
    repo: SqliteRepositories,
) -> None:
    assert await repo.record_signal(make_signal("known"), T0)
    decided: list[tuple[Signal | InvalidSignal, str]] = [
        (make_signal("known"), "filtered:stale"),
        (make_signal("a"), "filtered:stale"),
        (InvalidSignal("b", "bad_row", {"line": "x,y"}), "invalid:bad_row"),
    ]

    assert await repo.record_decided(decided, T0 + timedelta(seconds=5)) == 2

    known = await repo.get_signal("known")
    assert known is not None
    assert (known.outcome, known.seen_at) == (None, T0)  # untouched
    stored = await repo.get_signal("a")
    assert stored is not None
    assert (stored.outcome, stored.seen_at) == ("filtered:stale", T0 + timedelta(seconds=5))
    invalid = await repo.get_signal("b")
    assert invalid is not None
    assert invalid.outcome == "invalid:bad_row"
    assert await repo.record_decided([], T0) == 0


async def test_a_signal_and_its_pending_order_are_stored_together(
    repo: SqliteRepositories,
) -> None:
    assert await repo.add_entry_order(make_signal("s1"), T0, pending("s1"))

    stored = await repo.get_signal("s1")
    assert stored is not None
    assert stored.outcome is None  # decided when the order is answered
    order = await repo.get_order("e-s1")
    assert order is not None
    assert order.status is OrderStatus.PENDING


async def test_a_failed_order_write_leaves_neither_the_signal_nor_the_order(
    repo: SqliteRepositories,
) -> None:
    await repo.add_order(pending("other", link_id="e-taken"))

    with pytest.raises(sqlite3.IntegrityError):
        await repo.add_entry_order(make_signal("s1"), T0, pending("s1", link_id="e-taken"))

    assert await repo.get_signal("s1") is None
    assert await scalar(repo, "SELECT COUNT(*) FROM orders") == 1


async def test_a_known_signal_gets_no_order(repo: SqliteRepositories) -> None:
    assert await repo.record_signal(make_signal("s1"), T0)

    assert await repo.add_entry_order(make_signal("s1"), T0, pending("s1")) is False

    assert await repo.get_order("e-s1") is None
