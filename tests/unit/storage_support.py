"""Helpers shared by the storage tests: a repository on a fresh file under ``tmp_path``, the
signals, positions and trades they store, and reads of what is stored.

Test modules import the ``repo`` fixture by name (``from tests.unit.storage_support import
repo``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from storage.codec import TRADE_INSERT, trade_values
from storage.repositories import SqliteRepositories
from trader.models import ClosedTrade, CloseReason, Position, Side, Signal

T0 = datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[SqliteRepositories]:
    repositories = await SqliteRepositories.open(tmp_path / "paper.db")
    yield repositories
    await repositories.close()


def make_signal(signal_id: str = "sig-1", *, symbol: str = "SOLUSDT") -> Signal:
    return Signal(
        id=signal_id,
        timestamp=T0,
        symbol=symbol,
        verdict="BUY",
        confidence=Decimal("0.89"),
        entry_price=Decimal("3906.26"),
        ttl_minutes=15,
        target_min=Decimal("3889.5301142857147"),
        target_max=Decimal("3897.8950571428572"),
    )


def make_position(symbol: str = "SOLUSDT", *, signal_id: str = "sig-1") -> Position:
    return Position(
        signal_id=signal_id,
        symbol=symbol,
        side=Side.SELL,
        qty=Decimal("12.3"),
        entry_price=Decimal("187.45"),
        leverage=50,
        margin=Decimal("100"),
        stop_loss=Decimal("188.95"),
        take_profit=Decimal("185.20"),
        entry_fee=Decimal("1.26807425"),
        opened_at=T0,
        expires_at=T0 + timedelta(minutes=30),
        link_id="e-sig-1",
    )


def make_trade(
    symbol: str = "SOLUSDT",
    *,
    closed_at: datetime = T0 + timedelta(minutes=5),
    net_pnl: Decimal = Decimal("25.01"),
    signal_id: str = "sig-1",
) -> ClosedTrade:
    return ClosedTrade(
        signal_id=signal_id,
        symbol=symbol,
        side=Side.SELL,
        qty=Decimal("12.3"),
        entry_price=Decimal("187.45"),
        exit_price=Decimal("185.20"),
        leverage=50,
        margin=Decimal("100"),
        entry_fee=Decimal("1.26807425"),
        exit_fee=Decimal("1.2528780"),
        gross_pnl=Decimal("27.675"),
        net_pnl=net_pnl,
        reason=CloseReason.TAKE_PROFIT,
        opened_at=T0,
        closed_at=closed_at,
    )


async def store_trade(repo: SqliteRepositories, trade: ClosedTrade) -> ClosedTrade:
    position = await repo.add_position(make_position(trade.symbol, signal_id=trade.signal_id))
    assert position.id is not None
    return await repo.close_position(position.id, trade)


async def scalar(repo: SqliteRepositories, sql: str, params: tuple[object, ...] = ()) -> object:
    async with repo.database.read() as conn, conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return row[0]


def raw(repo: SqliteRepositories, sql: str) -> list[tuple[Any, ...]]:
    """Rows as another process sees them: a separate connection, committed data only."""
    with sqlite3.connect(repo.database.path) as conn:
        return conn.execute(sql).fetchall()


async def store_trades(repo: SqliteRepositories, trades: Sequence[ClosedTrade]) -> None:
    """Book ``trades`` in this order as history, fast (one statement): each a whole position,
    or a part of one (``part``: no position id), as the engine books them. The positions are
    given ids below 0, so none is one the engine gives a position it opens later."""
    async with repo.database.transaction() as conn:
        async with conn.execute("SELECT min(0, coalesce(min(position_id), 0)) FROM trades") as cur:
            row = await cur.fetchone()
        lowest = 0 if row is None else int(row[0])
        rows = [
            trade_values(None if trade.part else lowest - n, trade)
            for n, trade in enumerate(trades, start=1)
        ]
        await conn.executemany(TRADE_INSERT, rows)
