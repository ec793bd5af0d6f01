"""A booked change and its chat notes are one transaction: a failure or a crash at any point
leaves both or neither. Faults are injected into SQLite itself (a temporary trigger that
refuses outbox rows, on the repository's own connection), never by patching product code.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from storage.codec import to_db_time
from storage.repositories import SqliteRepositories
from tests.unit.storage_support import raw
from trader.events import (
    EventBus,
    PositionClosed,
    PositionOpened,
    TradingToggled,
    is_noted,
)
from trader.models import ClosedTrade, CloseReason, Fill, Position, Side, Signal
from trader.ports import NewMessage, OrderRecord, OrderStatus

T0 = datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)
WALL = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # the outbox's own (real) clock
OPENED = NewMessage(7, "text", '{"text": "Opened SOLUSDT"}')
CLOSED = NewMessage(7, "text", '{"text": "Closed SOLUSDT"}')


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[SqliteRepositories]:
    repositories = await SqliteRepositories.open(tmp_path / "paper.db", now=lambda: WALL)
    yield repositories
    await repositories.close()


async def refuse_notes(repo: SqliteRepositories, like: str = "%") -> None:
    """From now on SQLite refuses outbox rows whose payload matches ``like`` (a full disk,
    say, hitting the note rather than the trade)."""
    await repo.database.connection.execute(
        "CREATE TEMP TRIGGER refuse_notes BEFORE INSERT ON outbox"
        f" WHEN NEW.payload LIKE '{like}' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
    )


async def allow_notes(repo: SqliteRepositories) -> None:
    await repo.database.connection.execute("DROP TRIGGER temp.refuse_notes")


def position(symbol: str = "SOLUSDT") -> Position:
    return Position(
        signal_id="sig-1",
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal("10"),
        entry_price=Decimal("190"),
        leverage=50,
        margin=Decimal("38"),
        stop_loss=Decimal("188.48"),
        take_profit=Decimal("192.85"),
        entry_fee=Decimal("1.045"),
        opened_at=T0,
        expires_at=T0 + timedelta(minutes=15),
        link_id="e-sig-1",
    )


def fill(link_id: str = "e-sig-1", qty: str = "10", exec_id: str = "") -> Fill:
    return Fill(
        link_id=link_id,
        symbol="SOLUSDT",
        side=Side.BUY if link_id.startswith("e-") else Side.SELL,
        qty=Decimal(qty),
        price=Decimal("190"),
        fee=Decimal("1.045"),
        at=T0,
        exec_id=exec_id,
    )


def trade(qty: str = "10") -> ClosedTrade:
    return ClosedTrade(
        signal_id="sig-1",
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal(qty),
        entry_price=Decimal("190"),
        exit_price=Decimal("192.85"),
        leverage=50,
        margin=Decimal("38"),
        entry_fee=Decimal("1.045"),
        exit_fee=Decimal("1.06"),
        gross_pnl=Decimal("28.5"),
        net_pnl=Decimal("26.395"),
        reason=CloseReason.TAKE_PROFIT,
        opened_at=T0,
        closed_at=T0 + timedelta(minutes=5),
    )


async def pending_entry(repo: SqliteRepositories) -> None:
    """A signal and its entry order, recorded as the engine does before the venue fills."""
    signal = Signal(
        id="sig-1",
        timestamp=T0,
        symbol="SOLUSDT",
        verdict="BUY",
        confidence=Decimal("0.9"),
        ttl_minutes=15,
    )
    await repo.record_signal(signal, T0)
    await repo.add_order(
        OrderRecord("e-sig-1", "sig-1", "SOLUSDT", Side.BUY, Decimal(10), False,
                    OrderStatus.PENDING, T0)
    )  # fmt: skip


async def open_position(repo: SqliteRepositories) -> Position:
    await pending_entry(repo)
    return await repo.record_entry(position(), fill(), T0)


# -- booked together --------------------------------------------------------------------------


async def test_an_entry_is_stored_with_its_notes_due_now_on_the_outbox_clock(
    repo: SqliteRepositories,
) -> None:
    await pending_entry(repo)
    await repo.record_entry(position(), fill(), T0, notes=[OPENED])
    assert raw(repo, "SELECT symbol FROM positions") == [("SOLUSDT",)]
    # Stamped with real time, not the engine's: a simulated clock must not delay the note.
    assert raw(repo, "SELECT chat_id, payload, created_at, next_attempt_at FROM outbox") == [
        (7, OPENED.payload, to_db_time(WALL), to_db_time(WALL))
    ]


async def test_a_close_and_a_part_close_are_stored_with_their_notes(
    repo: SqliteRepositories,
) -> None:
    held = await open_position(repo)
    assert held.id is not None
    part = NewMessage(7, "text", '{"text": "Part closed SOLUSDT"}')
    await repo.reduce_position(replace(held, qty=Decimal(4)), trade("6"), notes=[part])
    await repo.close_position(held.id, trade("4"), notes=[CLOSED, CLOSED])
    assert raw(repo, "SELECT payload FROM outbox ORDER BY id") == [
        (part.payload,),
        (CLOSED.payload,),
        (CLOSED.payload,),
    ]
    assert raw(repo, "SELECT COUNT(*) FROM trades") == [(2,)]


async def test_a_setting_is_stored_with_its_notes(repo: SqliteRepositories) -> None:
    note = NewMessage(7, "text", '{"text": "Daily loss limit reached"}')
    await repo.set_setting("daily_loss_announced", "2025-10-19", notes=[note])
    assert await repo.get_setting("daily_loss_announced") == "2025-10-19"
    assert raw(repo, "SELECT payload FROM outbox") == [(note.payload,)]


# -- or neither -------------------------------------------------------------------------------


async def test_an_entry_whose_note_cannot_be_stored_is_not_booked(
    repo: SqliteRepositories,
) -> None:
    await pending_entry(repo)
    await refuse_notes(repo)
    with pytest.raises(sqlite3.DatabaseError, match="disk I/O error"):
        await repo.record_entry(position(), fill(), T0, notes=[OPENED])
    assert raw(repo, "SELECT COUNT(*) FROM positions") == [(0,)]
    assert raw(repo, "SELECT COUNT(*) FROM fills") == [(0,)]
    assert raw(repo, "SELECT status FROM orders") == [("pending",)]
    assert raw(repo, "SELECT outcome FROM signals") == [(None,)]
    assert raw(repo, "SELECT COUNT(*) FROM outbox") == [(0,)]


async def test_a_close_whose_note_cannot_be_stored_leaves_the_position_open(
    repo: SqliteRepositories,
) -> None:
    held = await open_position(repo)
    assert held.id is not None
    await refuse_notes(repo, "%Closed%")
    with pytest.raises(sqlite3.DatabaseError):
        await repo.close_position(held.id, trade(), fill("x-sig-1", exec_id="ex-1"), notes=[CLOSED])
    assert raw(repo, "SELECT id FROM positions") == [(held.id,)]
    assert raw(repo, "SELECT COUNT(*) FROM trades") == [(0,)]
    assert raw(repo, "SELECT COUNT(*) FROM fills WHERE exec_id = 'ex-1'") == [(0,)]
    # Once the outbox takes rows again, the same close books with its note.
    await allow_notes(repo)
    await repo.close_position(held.id, trade(), fill("x-sig-1", exec_id="ex-1"), notes=[CLOSED])
    assert raw(repo, "SELECT COUNT(*) FROM trades") == [(1,)]
    assert raw(repo, "SELECT payload FROM outbox") == [(CLOSED.payload,)]


async def test_a_part_close_or_a_setting_whose_note_fails_changes_nothing(
    repo: SqliteRepositories,
) -> None:
    held = await open_position(repo)
    await refuse_notes(repo)
    with pytest.raises(sqlite3.DatabaseError):
        await repo.reduce_position(replace(held, qty=Decimal(4)), trade("6"), notes=[CLOSED])
    with pytest.raises(sqlite3.DatabaseError):
        await repo.set_setting("daily_loss_announced", "2025-10-19", notes=[CLOSED])
    assert raw(repo, "SELECT qty FROM positions") == [("10",)]
    assert raw(repo, "SELECT COUNT(*) FROM trades") == [(0,)]
    assert await repo.get_setting("daily_loss_announced") is None


async def test_a_close_cut_short_at_any_statement_keeps_the_trade_and_its_note_together(
    tmp_path: Path,
) -> None:
    """The in-process stand-in for kill -9: the closing task is cancelled as SQLite starts
    its 1st, 2nd, ... statement, so the cut falls between every two of them once."""
    outcomes = set()
    for cut in range(1, 12):
        repo = await SqliteRepositories.open(tmp_path / f"crash-{cut}.db")
        try:
            held = await open_position(repo)
            assert held.id is not None
            closing = asyncio.create_task(repo.close_position(held.id, trade(), notes=[CLOSED]))
            await repo.database.connection.set_trace_callback(cut_at(cut, closing))
            await asyncio.gather(closing, return_exceptions=True)
            await repo.database.connection.set_trace_callback(None)
            state = (
                raw(repo, "SELECT COUNT(*) FROM trades")[0][0],
                raw(repo, "SELECT COUNT(*) FROM outbox")[0][0],
                raw(repo, "SELECT COUNT(*) FROM positions")[0][0],
            )
            assert state in {(0, 0, 1), (1, 1, 0)}, (cut, state)
            outcomes.add(state)
        finally:
            await repo.close()
    assert outcomes == {(0, 0, 1), (1, 1, 0)}  # cut before the commit, and after it


def cut_at(cut: int, task: asyncio.Task[Any]) -> Callable[[str], None]:
    """A trace callback that cancels ``task`` as SQLite starts its ``cut``-th statement. It
    runs on SQLite's thread, so the task is cut at its next await, as a kill would."""
    loop = asyncio.get_running_loop()
    statements = 0

    def trace(sql: str) -> None:
        nonlocal statements
        statements += 1
        if statements == cut:
            loop.call_soon_threadsafe(task.cancel)

    return trace


# -- the port on the bus ------------------------------------------------------------------------


def opened_event() -> PositionOpened:
    return PositionOpened(position(), T0)


def test_without_a_registered_renderer_an_event_has_no_notes() -> None:
    assert EventBus().notes_for(opened_event()) == ()


def test_the_registered_renderer_gives_the_notes_and_a_later_one_replaces_it() -> None:
    bus = EventBus()
    bus.register_notes(lambda event: [OPENED] if isinstance(event, PositionOpened) else [])
    assert bus.notes_for(opened_event()) == (OPENED,)
    assert bus.notes_for(TradingToggled(True, T0)) == ()
    bus.register_notes(lambda event: [CLOSED])
    assert bus.notes_for(opened_event()) == (CLOSED,)


def test_a_failing_renderer_costs_the_note_not_the_booking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: object) -> Sequence[NewMessage]:
        raise KeyError("no template")

    bus = EventBus()
    bus.register_notes(broken)
    with caplog.at_level(logging.ERROR):
        assert bus.notes_for(opened_event()) == ()
    assert "rendering the notes of PositionOpened failed" in caplog.text


def test_noted_marks_only_events_stored_with_their_notes() -> None:
    assert not is_noted(opened_event())
    assert is_noted(PositionOpened(position(), T0, noted=True))
    assert is_noted(PositionClosed(trade(), noted=True))
    assert not is_noted(TradingToggled(True, T0))  # never journaled: no such field
