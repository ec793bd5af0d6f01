"""Live mode's equity curve is the account as Bybit reported it: after each booked close
(whole or in part) the venue is asked for the balance, which is stored with the trade. The
curve then shows what the account really held (10,000 USDT, say), not the paper starting
balance plus PnL; deposits and withdrawals show as what they are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from trader.errors import ExchangeError
from trader.events import Event, PositionClosed, PositionReduced
from trader.parts import Parts
from trader.pnl import EquityCurve
from trader.ports import BalanceMark

log = logging.getLogger(__name__)


class BalanceMarks:
    """Subscribed to the engine's bus in live mode."""

    def __init__(self, parts: Parts) -> None:
        self._exchange, self._repo, self._clock = parts.exchange, parts.repo, parts.clock
        self._tasks = parts.tasks  # the mark is taken off the close's path: no wait on it

    async def on_event(self, event: Event) -> None:
        if isinstance(event, PositionClosed | PositionReduced) and event.trade.id is not None:
            self._tasks.spawn(self._mark(event.trade.id), f"balance-mark-{event.trade.symbol}")

    async def _mark(self, trade_id: int) -> None:
        try:
            balance = await self._exchange.balance()
        except ExchangeError as exc:  # the curve goes without this point; the trade is booked
            log.warning("no balance mark for trade %d: %s", trade_id, exc)
            return
        await self._repo.add_balance_mark(trade_id, balance, self._clock.now())


def balance_curve(
    marks: Sequence[BalanceMark],
) -> tuple[Decimal, list[tuple[datetime, Decimal]]]:
    """The curve of the marks (bounded as every equity curve is) and the balance it starts
    from: the first mark less its trade's PnL, the account just before that trade."""
    start = marks[0].balance - marks[0].net_pnl if marks else Decimal(0)
    curve = EquityCurve(start)
    for mark in marks:
        curve.add(mark.closed_at, mark.balance)
    return start, curve.points()
