"""Closed trades, the read side: the day's PnL for the loss stop, ``/trades``, stats and the
CSV export. Trades are written with the positions they close, in ``storage.positions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from storage.codec import TRADE_COLUMNS, to_db_time, trade_from_row
from storage.tables import Tables
from trader.models import ClosedTrade


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
