"""Balance marks: the account's balance as Bybit reported it after each close (live mode),
the points of the live equity curve."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

from storage.codec import from_db_time, to_db_time
from storage.tables import T, Tables
from trader.ports import BalanceMark


class BalanceMarkTables(Tables):
    """Implements ``trader.ports.BalanceMarkRepository``."""

    async def add_balance_mark(self, trade_id: int, balance: Decimal, at: datetime) -> None:
        # A trade is marked once: a second report for it (a retry) changes nothing.
        await self._write(
            "INSERT OR IGNORE INTO balance_marks (trade_id, balance, at) VALUES (?, ?, ?)",
            (trade_id, format(balance, "f"), to_db_time(at)),
        )

    async def fold_balance_marks(self, fold: Callable[[Iterator[BalanceMark]], T]) -> T:
        # In a worker thread on a connection of its own, as the trades are folded: a long
        # live history neither holds the loop nor the writes.
        return await self._read_aside(lambda conn: fold(_marks(conn)))


def _marks(conn: sqlite3.Connection) -> Iterator[BalanceMark]:
    rows = conn.execute(
        "SELECT t.id, t.closed_at, t.net_pnl, m.balance FROM balance_marks m "
        "JOIN trades t ON t.id = m.trade_id ORDER BY t.closed_at, t.id"
    )
    for ident, closed_at, net, balance in rows:
        yield BalanceMark(ident, from_db_time(closed_at), Decimal(net), Decimal(balance))
