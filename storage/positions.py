"""Orders, their fills and the positions they open, as one aggregate: an entry or an exit
writes them together (with the trade it closes into and its chat notes) in one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import aiosqlite

from storage.codec import (
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    TRADE_INSERT,
    order_from_row,
    plan_to_db,
    position_from_row,
    signal_values,
    to_db_decimal,
    to_db_time,
    trade_values,
    trailing_values,
)
from storage.outbox import insert_notes
from storage.signals import SIGNAL_INSERT
from storage.tables import Tables
from trader.models import ClosedTrade, Fill, Position, Signal
from trader.ports import FillAlreadyBooked, NewMessage, OrderRecord, OrderStatus

log = logging.getLogger(__name__)

ORDER_INSERT = f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


class PositionAlreadyOpen(ValueError):
    """A position is already open for this symbol (one-way mode allows one per symbol)."""


class PositionNotOpen(LookupError):
    """No open position has this id: it was closed already, or never stored.

    A ``LookupError`` so that the engine can catch it without importing ``storage``.
    """


class PositionTables(Tables):
    """Implements ``trader.ports.OrderRepository`` and ``trader.ports.PositionRepository``."""

    # -- orders and fills ---------------------------------------------------------------

    async def add_order(self, order: OrderRecord) -> None:
        """Store a new order. A second order with the same ``link_id`` raises IntegrityError:
        overwriting would hide what was actually sent."""
        await self._write(ORDER_INSERT, self._order_values(order))

    async def add_entry_order(self, signal: Signal, seen_at: datetime, order: OrderRecord) -> bool:
        # One transaction, the one write before the order is sent: a crash keeps the signal
        # and the trace of its order, or neither (then the row is read again and decided anew).
        async with self._db.transaction() as conn:
            # Cursors left to the garbage collector: closing one is one more thread hop.
            inserted = await conn.execute(SIGNAL_INSERT, signal_values(signal, seen_at))
            if inserted.rowcount != 1:
                return False  # known already: nothing is written
            await conn.execute(ORDER_INSERT, self._order_values(order))
        return True

    def _order_values(self, order: OrderRecord) -> tuple[object, ...]:
        return (
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

    # -- positions ----------------------------------------------------------------------

    async def add_position(
        self, position: Position, *, notes: Sequence[NewMessage] = ()
    ) -> Position:
        async with self._db.transaction() as conn:
            position_id = await _insert_position(conn, position)
            await insert_notes(conn, notes, self._now(), self._redact)
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
            await insert_notes(conn, notes, self._now(), self._redact)
        return replace(position, id=position_id)

    async def open_positions(self) -> Sequence[Position]:
        rows = await self._fetch_all(
            f"SELECT {POSITION_COLUMNS} FROM positions ORDER BY opened_at, id"
        )
        return [position_from_row(row) for row in rows]

    async def trailing_bests(self) -> dict[str, Decimal]:
        """The best price each open position's simulated trailing stop has followed (paper),
        by the position's ``link_id``: those active only."""
        rows = await self._fetch_all(
            "SELECT link_id, trailing_best FROM positions"
            " WHERE trailing_best IS NOT NULL AND link_id != ''"
        )
        return {row["link_id"]: Decimal(row["trailing_best"]) for row in rows}

    async def set_trailing_best(self, link_id: str, best: Decimal) -> bool:
        """False when no open position has ``link_id`` (closed, or not stored yet)."""
        changed = await self._write(
            "UPDATE positions SET trailing_best = ? WHERE link_id = ? AND link_id != ''",
            (to_db_decimal(best), link_id),
        )
        return changed > 0

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
            await insert_notes(conn, notes, self._now(), self._redact)
        return replace(trade, id=trade_id)

    async def set_stop_and_plan(self, position: Position) -> bool:
        """Store a position's stop-loss and take-profits (the breakeven move, a take-profit
        gone from the venue); False if it is no longer open."""
        if position.id is None:
            raise ValueError("only a stored position can be changed")
        changed = await self._write(
            "UPDATE positions SET stop_loss = ?, take_profit = ?, take_profit_plan = ?"
            " WHERE id = ?",
            (
                to_db_decimal(position.stop_loss),
                to_db_decimal(position.take_profit),
                plan_to_db(position.take_profits),
                position.id,
            ),
        )
        return changed == 1

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
                "UPDATE positions SET qty = ?, margin = ?, entry_fee = ?, stop_loss = ?,"
                " take_profit_plan = ? WHERE id = ?",
                (
                    to_db_decimal(position.qty),
                    to_db_decimal(position.margin),
                    to_db_decimal(position.entry_fee),
                    to_db_decimal(position.stop_loss),
                    plan_to_db(position.take_profits),
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
            await insert_notes(conn, notes, self._now(), self._redact)
        return replace(trade, id=trade_id)


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
            " margin, stop_loss, take_profit, entry_fee, opened_at, expires_at, link_id,"
            " trailing_distance, trailing_active_price, take_profit_plan)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                *trailing_values(position.trailing),
                plan_to_db(position.take_profits),
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
