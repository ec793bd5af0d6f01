"""The drawdown stop (``max_drawdown_pct``, ``/limits max_drawdown``): when equity falls that
percent below its peak, trading is switched off (remembered), the open positions are closed,
and chat is told.

A trader who switches trading back on ends the close-out, and the peak counts again from the
equity then: the same fall, and the stop's own closes, do not stop it again. Equity is
realised PnL (in live mode laid where Bybit's balance is): a withdrawal is no drawdown.
"""

from __future__ import annotations

import asyncio
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

DRAWDOWN_STOPPED_KEY = "drawdown_stopped_at"  # the last stop, or the resume after it: the
# peak counts from the equity then
FLATTEN_KEY = "drawdown_flatten"  # "1" while the stop's close-out is not done


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
    """The stop is checked after each close; its close-out goes on (every second, from the
    engine's sweep) until no position is left, across failures, entries stored after the stop
    and restarts; a trader who switches trading on again ends it."""

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
        self._live = parts.exchange.mode == "live"
        self._read_models = read_models
        self._stop_trading = stop_trading
        self._close = close
        self._checking = asyncio.Lock()  # a burst of closes stops trading once
        self._flatten = False  # the stop's close-out is not done

    async def load(self) -> None:
        """At start-up: a close-out a restart interrupted goes on."""
        self._flatten = await self._repo.get_setting(FLATTEN_KEY) == "1"

    async def on_event(self, event: Event) -> None:
        if isinstance(event, PositionClosed | PositionReduced):
            await self.check()

    async def check(self) -> None:
        """Stop if equity is ``max_drawdown_pct`` or more below its peak."""
        book = self._book
        limit = book.limits.max_drawdown_pct
        if limit is None:
            return
        async with self._checking:
            if not book.trading_enabled:
                return  # off already (stopped, or by the trader): nothing to switch off
            start, curve = await self._equity()
            stored = await self._repo.get_setting(DRAWDOWN_STOPPED_KEY)
            since = datetime.fromisoformat(stored) if stored else None
            pct, peak, equity = current_drawdown(start, curve, since)
            if pct < limit:
                return
            now = self._clock.now()
            log.warning("drawdown %.2f%% from %s to %s: trading off", pct, peak, equity)
            await self._repo.set_setting(DRAWDOWN_STOPPED_KEY, now.isoformat())
            await self._repo.set_setting(FLATTEN_KEY, "1")
            self._flatten = True
            await self._stop_trading()
            await self._bus.publish(DrawdownStopped(pct, limit, peak, equity, now))
        await self.flatten()

    async def resumed(self) -> None:
        """Trading switched on again: the close-out ends, and the peak counts from the equity
        now (the stop's own closes, booked after it, do not count against the next one)."""
        if await self._repo.get_setting(DRAWDOWN_STOPPED_KEY) is None:
            return
        self._flatten = False
        await self._repo.set_setting(FLATTEN_KEY, "0")
        await self._repo.set_setting(DRAWDOWN_STOPPED_KEY, self._clock.now().isoformat())

    async def flatten(self) -> None:
        """While the close-out is pending: close what is open and not being closed (a close
        that failed waits for its retry time); done once nothing is open or in flight."""
        if not self._flatten:
            return
        book = self._book
        if not book.positions and not book.in_flight:
            self._flatten = False
            await self._repo.set_setting(FLATTEN_KEY, "0")
            return
        now = self._clock.now()
        for symbol in list(book.positions):
            retry_at = book.retry_close_at.get(symbol)
            if symbol in book.closing or (retry_at is not None and now < retry_at):
                continue
            book.closing.add(symbol)  # taken now: the next sweep does not close it again
            self._tasks.spawn(self._close_out(symbol), "drawdown-close")

    async def _close_out(self, symbol: str) -> None:
        self._book.closing.discard(symbol)  # the close takes its own mark
        await self._close(symbol, CloseReason.DRAWDOWN)

    async def _equity(self) -> tuple[Decimal, list[tuple[datetime, Decimal]]]:
        """Equity as realised PnL moves it: a deposit or a withdrawal is no drawdown. Live,
        the curve is laid where the account is now (the balance Bybit last told)."""
        start, curve = await self._read_models.realised_curve()
        balance = self._book.balance
        if not self._live or balance is None:
            return start, curve
        shift = balance - (curve[-1][1] if curve else start)
        return start + shift, [(at, value + shift) for at, value in curve]
