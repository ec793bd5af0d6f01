"""The balance the engine sizes trades from (``position_size_pct``, ``risk_per_trade_pct``)
and live mode's equity curve.

The book keeps the balance as the venue last told it: read at start-up and after each booked
change, never on an entry's path (no round trip before the order). In live mode that read is
a call to Bybit after each close (whole or in part), and what it answers is also stored with
the trade: the curve then shows what the account really held (10,000 USDT, say), not the
paper starting balance plus PnL; deposits and withdrawals show as what they are.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from trader.equity_curve import EquityCurve
from trader.errors import ExchangeError
from trader.events import Event, PositionClosed, PositionOpened, PositionReduced
from trader.parts import Parts
from trader.ports import BalanceMark

log = logging.getLogger(__name__)

FRESH = timedelta(minutes=5)  # a close booked later than this after it happened is not marked


class BalanceMarks:
    """Subscribed to the engine's bus."""

    def __init__(self, parts: Parts, *, after: Callable[[], Awaitable[None]]) -> None:
        """``after``: run once a mark is stored (the drawdown stop looks at the new point)."""
        self._book, self._exchange = parts.book, parts.exchange
        self._repo, self._clock = parts.repo, parts.clock
        self._tasks = parts.tasks  # the mark is taken off the close's path: no wait on it
        self._after = after
        self._live = parts.exchange.mode == "live"
        self._strategy = parts.strategy

    async def refresh(self) -> None:
        """Read the balance now (at start-up); the book keeps it. Live, only when sizing
        needs it: a call to Bybit that nothing else would read."""
        strategy = self._strategy
        if (
            self._live
            and strategy.position_size_pct is None
            and strategy.risk_per_trade_pct is None
        ):
            return
        try:
            self._book.balance = await self._exchange.balance()
        except ExchangeError as exc:
            log.warning("balance unavailable: %s", exc)

    async def on_event(self, event: Event) -> None:
        if not self._live:
            # The paper venue's balance is in this process: read at once, after each change.
            if isinstance(event, PositionOpened | PositionClosed | PositionReduced):
                self._book.balance = await self._exchange.balance()
            return
        if not isinstance(event, PositionClosed | PositionReduced) or event.trade.id is None:
            return
        # Booked late (an exit found by reconciliation, or after a ban): today's balance is
        # not what the account held then, so the curve goes without this point; the book
        # still takes the balance, and the drawdown stop still looks.
        fresh = self._clock.now() - event.trade.closed_at <= FRESH
        mark = event.trade.id if fresh else None
        self._tasks.spawn(self._read_after_close(mark), f"balance-{event.trade.symbol}")

    async def _read_after_close(self, trade_id: int | None) -> None:
        """The balance after a close, kept by the book; stored as the mark of ``trade_id``."""
        try:
            balance = await self._exchange.balance()
        except ExchangeError as exc:  # the curve goes without this point; the trade is booked
            log.warning("no balance after the close of trade %s: %s", trade_id, exc)
            return
        self._book.balance = balance
        if trade_id is not None:
            await self._repo.add_balance_mark(trade_id, balance, self._clock.now())
        await self._after()


def balance_curve(marks: Iterator[BalanceMark]) -> tuple[Decimal, list[tuple[datetime, Decimal]]]:
    """The curve of the marks (bounded as every equity curve is) and the balance it starts
    from: the first mark less its trade's PnL, the account just before that trade."""
    first = next(marks, None)
    if first is None:
        return Decimal(0), []
    start = first.balance - first.net_pnl
    curve = EquityCurve(start)
    for mark in itertools.chain((first,), marks):
        curve.add(mark.closed_at, mark.balance)
    return start, curve.points()
