"""Closed trades, the read side: the day's PnL for the loss stop, ``/trades``, stats and the
CSV export. Trades are written with the positions they close, in ``storage.positions``.

A read that can span the whole history (stats, the PnL total, rebuilding the CSV) runs in a
worker thread on a read-only connection of its own: it neither runs on the event loop nor
holds the shared connection, on which a signal's writes would wait behind it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from storage.codec import TRADE_COLUMNS, from_db_time, to_db_time, trade_from_row
from storage.export import rewrite_trades
from storage.tables import Tables
from trader.models import ClosedTrade
from trader.ports import TradePoint

T = TypeVar("T")

POINT_COLUMNS = (
    "id, closed_at, net_pnl, entry_fee, exit_fee, symbol, opened_at, position_id IS NOT NULL,"
    # The last part of a position closed in parts: its parts before, net, as exact text
    # (migration 008 indexes the parts by signal).
    " CASE WHEN position_id IS NOT NULL THEN (SELECT group_concat(p.net_pnl, ' ')"
    " FROM trades AS p WHERE p.signal_id = trades.signal_id AND p.position_id IS NULL) END"
)


class TradeTables(Tables):
    """Implements ``trader.ports.TradeRepository``."""

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

    async def signal_trades(self, signal_id: str) -> Sequence[ClosedTrade]:
        rows = await self._fetch_all(
            f"SELECT {TRADE_COLUMNS} FROM trades WHERE signal_id = ? ORDER BY closed_at, id",
            (signal_id,),
        )
        return [trade_from_row(row) for row in rows]

    async def all_trades(self) -> Sequence[ClosedTrade]:
        rows = await self._fetch_all(f"SELECT {TRADE_COLUMNS} FROM trades ORDER BY closed_at, id")
        return [trade_from_row(row) for row in rows]

    async def net_pnl_total(self) -> Decimal:
        return await self._read_aside(_net_pnl_total)

    async def fold_trades(self, fold: Callable[[Iterator[TradePoint]], T], after_id: int = 0) -> T:
        return await self._read_aside(lambda conn: fold(_trade_points(conn, after_id)))

    async def trade_count(self) -> int:
        """How many trades have been closed, ever (without loading them)."""
        row = await self._fetch_one("SELECT COUNT(*) FROM trades")
        return 0 if row is None else int(row[0])

    async def last_trade(self) -> ClosedTrade | None:
        """The trade booked last (the highest id): the last row of ``trades_log.csv``."""
        row = await self._fetch_one(f"SELECT {TRADE_COLUMNS} FROM trades ORDER BY id DESC LIMIT 1")
        return None if row is None else trade_from_row(row)

    async def export_trades(self, csv_path: Path) -> None:
        """Rewrite ``trades_log.csv`` from the database, in the order the trades were booked
        (as it is appended), atomically; streamed, so a long history is never all in memory."""

        def export(conn: sqlite3.Connection) -> None:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(f"SELECT {TRADE_COLUMNS} FROM trades ORDER BY id")
            rewrite_trades(csv_path, (trade_from_row(row) for row in rows))

        await self._read_aside(export)


def _net_pnl_total(conn: sqlite3.Connection) -> Decimal:
    # Summed as Decimal: SQL's SUM over text would go through floats and lose cents.
    rows = conn.execute("SELECT net_pnl FROM trades")
    return sum((Decimal(net) for (net,) in rows), Decimal(0))


def _trade_points(conn: sqlite3.Connection, after_id: int) -> Iterator[TradePoint]:
    # '+closed_at': found by the id range and then sorted, not by scanning the close-time
    # index, so that the few trades since the last report cost the same at any history.
    rows = conn.execute(
        f"SELECT {POINT_COLUMNS} FROM trades WHERE id > ? ORDER BY +closed_at, id", (after_id,)
    )
    zero = Decimal(0)
    for ident, closed_at, net, entry_fee, exit_fee, symbol, opened_at, ends, parts in rows:
        yield TradePoint(
            ident,
            from_db_time(closed_at),
            Decimal(net),
            # As ClosedTrade.fees adds them, so that the sums come out the same.
            Decimal(entry_fee) + Decimal(exit_fee),
            symbol,
            from_db_time(opened_at),
            ends == 1,
            sum((Decimal(part) for part in parts.split()), zero) if parts else zero,
        )
