"""The drawdown stop (``max_drawdown_pct``, ``/limits max_drawdown``): when equity falls that
percent below its peak, trading is switched off (remembered), the open positions are closed,
and chat is told. Equity is the curve the reports draw: in paper mode the starting balance plus
the net PnL of each close, in live mode the balance Bybit reported after each close.

After a stop the peak counts again from the equity it stopped at: a trader who switches
trading back on is not stopped again by the same fall.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from trader.events import DrawdownStopped, Event, PositionClosed, PositionReduced
from trader.models import CloseReason
from trader.parts import Parts
from trader.read_models import ReadModels

log = logging.getLogger(__name__)

DRAWDOWN_STOPPED_KEY = "drawdown_stopped_at"  # when the last stop was: the peak counts anew


def current_drawdown(
    start: Decimal, curve: Sequence[tuple[datetime, Decimal]], since: datetime | None = None
) -> tuple[Decimal, Decimal, Decimal]:
    """(percent below the peak, the peak, equity now) of an equity curve starting at
    ``start``; ``since``: the last stop, whose equity is the peak to count from."""
    peak = start
    for at, equity in curve:
        peak = equity if since is not None and at <= since else max(peak, equity)
    now = curve[-1][1] if curve else start
    pct = (peak - now) / peak * 100 if peak > 0 else Decimal(0)
    return max(pct, Decimal(0)), peak, now


class DrawdownGuard:
    def __init__(
        self,
        parts: Parts,
        *,
        read_models: ReadModels,
        stop_trading: Callable[[], Awaitable[None]],
        close: Callable[[str, CloseReason], Coroutine[Any, Any, None]],
    ) -> None:
        self._book, self._repo, self._clock = parts.book, parts.repo, parts.clock
        self._bus, self._tasks = parts.bus, parts.tasks
        self._read_models = read_models
        self._stop_trading = stop_trading
        self._close = close

    async def on_event(self, event: Event) -> None:
        if isinstance(event, PositionClosed | PositionReduced):
            await self.check()

    async def check(self) -> None:
        """Stop if equity is ``max_drawdown_pct`` or more below its peak."""
        book = self._book
        limit = book.limits.max_drawdown_pct
        if limit is None or not book.trading_enabled:
            return
        performance = await self._read_models.performance()
        stored = await self._repo.get_setting(DRAWDOWN_STOPPED_KEY)
        since = datetime.fromisoformat(stored) if stored else None
        pct, peak, equity = current_drawdown(performance.curve_start, performance.curve, since)
        if pct < limit or not book.trading_enabled:
            return
        now = self._clock.now()
        log.warning("drawdown %.2f%% from %s to %s: trading off", pct, peak, equity)
        await self._repo.set_setting(DRAWDOWN_STOPPED_KEY, now.isoformat())
        await self._stop_trading()
        await self._bus.publish(DrawdownStopped(pct, limit, peak, equity, now))
        for symbol in list(book.positions):
            self._tasks.spawn(self._close(symbol, CloseReason.DRAWDOWN), "drawdown-close")
