"""The SQLite implementation of ``trader.ports.Repositories``: every table behind one object,
assembled from parts by concept (``storage.tables`` says which); signals, orders, positions,
trades and settings are here.

Decimals are stored as exact text, times as fixed-width UTC ISO-8601 text, enums as values.
Chat notes given with a change (``notes=``) go into the outbox in the change's transaction.
Every error text written (orders, signal outcomes, the outbox's errors and texts) is masked
of the secrets the repository was given, as the logs are.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite

from storage.codec import (
    FULL_SIGNAL_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    SIGNAL_COLUMNS,
    TRADE_COLUMNS,
    TRADE_INSERT,
    order_from_row,
    position_from_row,
    signal_from_row,
    signal_values,
    stored_signal_from_row,
    to_db_decimal,
    to_db_time,
    trade_from_row,
    trade_values,
)
from storage.confirmations import ConfirmationTables
from storage.db import open_database
from storage.outbox import OutboxTables
from storage.tables import utc_now
from trader.models import ClosedTrade, Fill, InvalidSignal, Position, Signal
from trader.ports import (
    FillAlreadyBooked,
    NewMessage,
    OrderRecord,
    OrderStatus,
    StoredSignal,
)

if TYPE_CHECKING:
    from trader.ports import Repositories

log = logging.getLogger(__name__)


class PositionAlreadyOpen(ValueError):
    """A position is already open for this symbol (one-way mode allows one per symbol)."""


class PositionNotOpen(LookupError):
    """No open position has this id: it was closed already, or never stored.

    A ``LookupError`` so that the engine can catch it without importing ``storage``.
    """


class SqliteRepositories(OutboxTables, ConfirmationTables):
    """Implements ``trader.ports.Repositories`` over one ``Database``.

    Every write method is one transaction, committed before it returns. ``secrets`` are
    masked in every error text written; notes stored with a change are stamped with ``now``
    (see ``Tables``).
    """

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        secrets: Iterable[str] = (),
        now: Callable[[], datetime] = utc_now,
    ) -> SqliteRepositories:
        """Open (creating and migrating if needed) the database file at ``path``."""
        return cls(await open_database(path), secrets=secrets, now=now)

    # -- signals ------------------------------------------------------------------------

    async def record_signal(self, signal: Signal | InvalidSignal, seen_at: datetime) -> bool:
        changed = await self._write(
            "INSERT INTO signals (id, symbol, verdict, timestamp, seen_at, confidence,"
            " entry_price, ttl_minutes, target_min, target_max, raw, outcome, outcome_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            signal_values(signal, seen_at, redact=self._redact),
        )
        return changed == 1

    async def set_outcome(self, signal_id: str, outcome: str, at: datetime) -> None:
        changed = await self._write(
            "UPDATE signals SET outcome = ?, outcome_at = ? WHERE id = ?",
            # An outcome can carry an error text ("failed:<the venue's words>").
            (self._redact(outcome), to_db_time(at), signal_id),
        )
        if changed == 0:
            log.warning("outcome %r for unknown signal %s was not stored", outcome, signal_id)

    async def get_signal(self, signal_id: str) -> StoredSignal | None:
        row = await self._fetch_one(
            f"SELECT {SIGNAL_COLUMNS} FROM signals WHERE id = ?", (signal_id,)
        )
        return None if row is None else stored_signal_from_row(row)

    async def signals_without_outcome(self) -> Sequence[StoredSignal]:
        rows = await self._fetch_all(
            f"SELECT {SIGNAL_COLUMNS} FROM signals WHERE outcome IS NULL ORDER BY seen_at, id"
        )
        return [stored_signal_from_row(row) for row in rows]

    async def load_signal(self, signal_id: str) -> Signal | None:
        row = await self._fetch_one(
            f"SELECT {FULL_SIGNAL_COLUMNS} FROM signals WHERE id = ?", (signal_id,)
        )
        return None if row is None else signal_from_row(row)

    # -- orders and fills ---------------------------------------------------------------

    async def add_order(self, order: OrderRecord) -> None:
        """Store a new order. A second order with the same ``link_id`` raises IntegrityError:
        overwriting would hide what was actually sent."""
        await self._write(
            f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                order.link_id,
                order.signal_id,
                order.symbol,
                order.side.value,
                to_db_decimal(order.qty),
                int(order.reduce_only),
                order.status.value,
                to_db_time(order.created_at),
                self._redact(order.error),
                order.exchange_order_id,
            ),
        )

    async def update_order(
        self, link_id: str, status: OrderStatus, *, error: str = "", exchange_order_id: str = ""
    ) -> None:
        """Set the status and error; an empty ``exchange_order_id`` keeps the one known,
        since the exchange's id never changes once it has been seen."""
        changed = await self._write(
            "UPDATE orders SET status = ?, error = ?,"
            " exchange_order_id = CASE WHEN ? = '' THEN exchange_order_id ELSE ? END"
            " WHERE link_id = ?",
            (status.value, self._redact(error), exchange_order_id, exchange_order_id, link_id),
        )
        if changed == 0:
            log.warning("status %s for unknown order %s was not stored", status.value, link_id)

    async def get_order(self, link_id: str) -> OrderRecord | None:
        row = await self._fetch_one(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE link_id = ?", (link_id,)
        )
        return None if row is None else order_from_row(row)

    async def orders_with_status(self, *statuses: OrderStatus) -> Sequence[OrderRecord]:
        if not statuses:
            return []
        marks = ", ".join("?" for _ in statuses)
        rows = await self._fetch_all(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE status IN ({marks})"
            " ORDER BY created_at, link_id",
            [status.value for status in statuses],
        )
        return [order_from_row(row) for row in rows]

    async def count_exit_orders(self, signal_id: str) -> int:
        row = await self._fetch_one(
            "SELECT COUNT(*) FROM orders WHERE signal_id = ? AND reduce_only = 1", (signal_id,)
        )
        return int(row[0]) if row is not None else 0

    async def add_fill(self, fill: Fill) -> bool:
        async with self._db.transaction() as conn:
            return await _insert_fill(conn, fill)

    # -- positions and trades -----------------------------------------------------------

    async def add_position(
        self, position: Position, *, notes: Sequence[NewMessage] = ()
    ) -> Position:
        async with self._db.transaction() as conn:
            position_id = await _insert_position(conn, position)
            await self._insert_notes(conn, notes, self._now())
        return replace(position, id=position_id)

    async def record_entry(
        self, position: Position, fill: Fill, at: datetime, *, notes: Sequence[NewMessage] = ()
    ) -> Position:
        # One transaction: a crash leaves either all of the entry's records, its chat notes
        # included, or none.
        async with self._db.transaction() as conn:
            position_id = await _insert_position(conn, position)
            await _insert_fill(conn, fill)
            await conn.execute(
                "UPDATE orders SET status = ?, error = '' WHERE link_id = ?",
                (OrderStatus.FILLED.value, fill.link_id),
            )
            await conn.execute(
                "UPDATE signals SET outcome = 'opened', outcome_at = ? WHERE id = ?",
                (to_db_time(at), position.signal_id),
            )
            await self._insert_notes(conn, notes, self._now())
        return replace(position, id=position_id)

    async def open_positions(self) -> Sequence[Position]:
        rows = await self._fetch_all(
            f"SELECT {POSITION_COLUMNS} FROM positions ORDER BY opened_at, id"
        )
        return [position_from_row(row) for row in rows]

    async def close_position(
        self,
        position_id: int,
        trade: ClosedTrade,
        exit_fill: Fill | None = None,
        *,
        notes: Sequence[NewMessage] = (),
    ) -> ClosedTrade:
        async with self._db.transaction() as conn:
            async with conn.execute(
                "SELECT symbol FROM positions WHERE id = ?", (position_id,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                # Closed already (an SL fill racing a /close): a second trade would double
                # count its PnL.
                raise PositionNotOpen(f"position {position_id} is not open")
            if row["symbol"] != trade.symbol:
                raise ValueError(
                    f"trade for {trade.symbol} cannot close position {position_id}"
                    f" ({row['symbol']})"
                )
            await conn.execute("DELETE FROM positions WHERE id = ?", (position_id,))
            cursor = await conn.execute(TRADE_INSERT, trade_values(position_id, trade))
            trade_id = cursor.lastrowid
            await cursor.close()
            if exit_fill is not None and not await _insert_fill(conn, exit_fill):
                # Booked already as a part of this position: closing with it would count
                # its PnL twice.
                raise FillAlreadyBooked(f"fill {exit_fill.exec_id} is booked already")
            await self._insert_notes(conn, notes, self._now())
        return replace(trade, id=trade_id)

    async def reduce_position(
        self,
        position: Position,
        trade: ClosedTrade,
        exit_fill: Fill | None = None,
        *,
        notes: Sequence[NewMessage] = (),
    ) -> ClosedTrade:
        """In one transaction: the closed part of a position as a trade (with its exit fill)
        and the position's new size, margin and entry fee. ``FillAlreadyBooked`` if the fill
        was booked before (a push and a REST read of the same exit)."""
        if position.id is None:
            raise ValueError("only a stored position can be reduced")
        async with self._db.transaction() as conn:
            if exit_fill is not None and not await _insert_fill(conn, exit_fill):
                raise FillAlreadyBooked(f"fill {exit_fill.exec_id} is booked already")
            cursor = await conn.execute(
                "UPDATE positions SET qty = ?, margin = ?, entry_fee = ? WHERE id = ?",
                (
                    to_db_decimal(position.qty),
                    to_db_decimal(position.margin),
                    to_db_decimal(position.entry_fee),
                    position.id,
                ),
            )
            if cursor.rowcount != 1:
                raise PositionNotOpen(f"position {position.id} is not open")
            await cursor.close()
            # A part has no position_id: the column stays "the one trade a position closes
            # into"; the parts are tied to it by signal_id.
            cursor = await conn.execute(TRADE_INSERT, trade_values(None, trade))
            trade_id = cursor.lastrowid
            await cursor.close()
            await self._insert_notes(conn, notes, self._now())
        return replace(trade, id=trade_id)

    async def recent_trades(self, limit: int) -> Sequence[ClosedTrade]:
        if limit <= 0:
            return []
        rows = await self._fetch_all(
            f"SELECT {TRADE_COLUMNS} FROM trades ORDER BY closed_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [trade_from_row(row) for row in rows]

    async def trades_closed_since(self, since: datetime) -> Sequence[ClosedTrade]:
        rows = await self._fetch_all(
            f"SELECT {TRADE_COLUMNS} FROM trades WHERE closed_at >= ? ORDER BY closed_at, id",
            (to_db_time(since),),
        )
        return [trade_from_row(row) for row in rows]

    async def all_trades(self) -> Sequence[ClosedTrade]:
        rows = await self._fetch_all(f"SELECT {TRADE_COLUMNS} FROM trades ORDER BY closed_at, id")
        return [trade_from_row(row) for row in rows]

    async def net_pnl_total(self) -> Decimal:
        # Summed in Python: SQL SUM over text would go through floats and lose cents.
        rows = await self._fetch_all("SELECT net_pnl FROM trades")
        return sum((Decimal(row[0]) for row in rows), Decimal(0))

    async def trade_count(self) -> int:
        """How many trades have been closed, ever (without loading them)."""
        row = await self._fetch_one("SELECT COUNT(*) FROM trades")
        return 0 if row is None else int(row[0])

    # -- settings -----------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        row = await self._fetch_one("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_setting(self, key: str, value: str, *, notes: Sequence[NewMessage] = ()) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
            await self._insert_notes(conn, notes, self._now())

    async def delete_setting(self, key: str) -> None:
        await self._write("DELETE FROM settings WHERE key = ?", (key,))

    async def settings_with_prefix(self, prefix: str) -> dict[str, str]:
        # substr rather than LIKE: LIKE is case-insensitive and treats '_' as a wildcard.
        rows = await self._fetch_all(
            "SELECT key, value FROM settings WHERE substr(key, 1, length(?)) = ? ORDER BY key",
            (prefix, prefix),
        )
        return {str(row[0]): str(row[1]) for row in rows}


if TYPE_CHECKING:

    def _implements_the_port(repositories: SqliteRepositories) -> Repositories:
        # mypy checks the structural match here, so a drift from trader.ports fails the build.
        return repositories


async def _insert_fill(conn: aiosqlite.Connection, fill: Fill) -> bool:
    # DO NOTHING only covers uniqueness, unlike INSERT OR IGNORE, which would also
    # swallow a CHECK failure and report it as a duplicate.
    cursor = await conn.execute(
        "INSERT INTO fills (link_id, symbol, side, qty, price, fee, at, exec_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            fill.link_id,
            fill.symbol,
            fill.side.value,
            to_db_decimal(fill.qty),
            to_db_decimal(fill.price),
            to_db_decimal(fill.fee),
            to_db_time(fill.at),
            fill.exec_id,
        ),
    )
    changed = cursor.rowcount
    await cursor.close()
    return changed == 1


async def _insert_position(conn: aiosqlite.Connection, position: Position) -> int:
    try:
        cursor = await conn.execute(
            "INSERT INTO positions (signal_id, symbol, side, qty, entry_price, leverage,"
            " margin, stop_loss, take_profit, entry_fee, opened_at, expires_at, link_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                position.signal_id,
                position.symbol,
                position.side.value,
                to_db_decimal(position.qty),
                to_db_decimal(position.entry_price),
                position.leverage,
                to_db_decimal(position.margin),
                to_db_decimal(position.stop_loss),
                to_db_decimal(position.take_profit),
                to_db_decimal(position.entry_fee),
                to_db_time(position.opened_at),
                to_db_time(position.expires_at),
                position.link_id,
            ),
        )
    except sqlite3.IntegrityError as exc:
        if "positions.symbol" in str(exc):
            raise PositionAlreadyOpen(f"a position is already open for {position.symbol}") from exc
        raise
    position_id = cursor.lastrowid
    await cursor.close()
    if position_id is None:
        raise RuntimeError("SQLite returned no id for the new position")
    return int(position_id)
