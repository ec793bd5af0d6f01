"""Live mode's equity curve is the account as Bybit reported it: after each booked close
(whole or in part) the venue is asked for the balance, which is stored with the trade. The
curve then shows what the account really held (10,000 USDT, say), not the paper starting
balance plus PnL; deposits and withdrawals show as what they are.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from trader.errors import ExchangeError
from trader.events import Event, PositionClosed, PositionReduced
from trader.parts import Parts
from trader.pnl import EquityCurve
from trader.ports import BalanceMark

log = logging.getLogger(__name__)

FRESH = timedelta(minutes=5)  # a close booked later than this after it happened is not marked


class BalanceMarks:
    """Subscribed to the engine's bus in live mode."""

    def __init__(self, parts: Parts, *, after: Callable[[], Awaitable[None]]) -> None:
        """``after``: run once a mark is stored (the drawdown stop looks at the new point)."""
        self._exchange, self._repo, self._clock = parts.exchange, parts.repo, parts.clock
        self._tasks = parts.tasks  # the mark is taken off the close's path: no wait on it
        self._after = after

    async def on_event(self, event: Event) -> None:
        if not isinstance(event, PositionClosed | PositionReduced) or event.trade.id is None:
            return
        if self._clock.now() - event.trade.closed_at > FRESH:
            # Booked late (an exit found by reconciliation): today's balance is not what the
            # account held then, so the curve goes without this point.
            return
        self._tasks.spawn(self._mark(event.trade.id), f"balance-mark-{event.trade.symbol}")

    async def _mark(self, trade_id: int) -> None:
        try:
            balance = await self._exchange.balance()
        except ExchangeError as exc:  # the curve goes without this point; the trade is booked
            log.warning("no balance mark for trade %d: %s", trade_id, exc)
            return
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
