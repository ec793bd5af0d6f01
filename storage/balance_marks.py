"""Balance marks: the account's balance as Bybit reported it after each close (live mode),
the points of the live equity curve."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from storage.codec import from_db_time, to_db_time
from storage.tables import Tables
from trader.ports import BalanceMark


class BalanceMarkTables(Tables):
    """Implements ``trader.ports.BalanceMarkRepository``."""

    async def add_balance_mark(self, trade_id: int, balance: Decimal, at: datetime) -> None:
        # A trade is marked once: a second report for it (a retry) changes nothing.
        await self._write(
            "INSERT OR IGNORE INTO balance_marks (trade_id, balance, at) VALUES (?, ?, ?)",
            (trade_id, format(balance, "f"), to_db_time(at)),
        )

    async def balance_marks(self) -> Sequence[BalanceMark]:
        rows = await self._fetch_all(
            "SELECT t.id, t.closed_at, t.net_pnl, m.balance FROM balance_marks m "
            "JOIN trades t ON t.id = m.trade_id ORDER BY t.closed_at, t.id"
        )
        return [
            BalanceMark(row[0], from_db_time(row[1]), Decimal(row[2]), Decimal(row[3]))
            for row in rows
        ]
