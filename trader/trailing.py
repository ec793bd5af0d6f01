"""The trailing stop (``trailing_stop_pct``, ``trailing_activation_pct``): the plan a strategy
gives a position, putting it on the venue after the entry fills, and how it follows the price.

The arithmetic is ``sizing.trailing_prices``; live, paper and replay all plan through ``plan``.
Bybit holds a live one (its state too); paper simulates it with ``follow`` and ``level``, and
keeps the best price it followed in the database (``BestPrices``) so that a restart resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Protocol

from trader import sizing
from trader.exchange.base import Exchange
from trader.models import Position, Side, TrailingStop
from trader.orders import short
from trader.strategy import Strategy

log = logging.getLogger(__name__)

STORE_EVERY = 1.0  # seconds: a paper trailing stop's best price is stored at most this often


def plan(
    strategy: Strategy, side: Side, entry: Decimal, *, leverage: int, tick: Decimal
) -> TrailingStop | None:
    """The trailing stop ``strategy`` gives a position entered at ``entry``; None without one."""
    if strategy.trailing_stop_pct is None:
        return None
    distance, active = sizing.trailing_prices(
        side,
        entry,
        distance_pct=strategy.trailing_stop_pct,
        activation_pct=strategy.trailing_activation_pct,
        leverage=leverage,
        tick=tick,
    )
    return TrailingStop(distance, active)


async def place(
    exchange: Exchange, strategy: Strategy, position: Position, tick: Decimal
) -> tuple[Position, str | None]:
    """Put the strategy's trailing stop on the venue for a position just filled (planned from
    its fill price): the position with it, or as it was and why not (it keeps its SL/TP)."""
    trailing = plan(
        strategy, position.side, position.entry_price, leverage=position.leverage, tick=tick
    )
    if trailing is None:
        return position, None
    try:
        await exchange.set_trailing_stop(position.symbol, trailing)
    except Exception as exc:  # the entry stands whatever happens to its trailing stop
        log.warning("setting the trailing stop of %s failed: %s", position.symbol, exc)
        why = short(str(exc) or type(exc).__name__)
        return position, f"trailing stop not set ({why}); the position keeps its SL and TP"
    return replace(position, trailing=trailing), None


def follow(
    side: Side, price: Decimal, best: Decimal | None, active_price: Decimal | None
) -> Decimal | None:
    """The best price since the trailing stop activated, after ``price``; None while it is not
    active (the price has not reached ``active_price`` yet; None: active at once)."""
    if best is None:
        reached = active_price is None or side.sign * (price - active_price) >= 0
        return price if reached else None
    return max(best, price) if side is Side.BUY else min(best, price)


def level(side: Side, best: Decimal, distance: Decimal) -> Decimal:
    """Where an active trailing stop closes the position: ``distance`` back from the best."""
    return best - side.sign * distance


class BestPriceStore(Protocol):
    """Where paper keeps the best price of each trailing stop it simulates (by the position's
    entry ``link_id``), across restarts: the database."""

    async def trailing_bests(self) -> dict[str, Decimal]: ...

    async def set_trailing_best(self, link_id: str, best: Decimal) -> bool:
        """Store it; False when no open position has that ``link_id`` (not stored yet)."""
        ...


class BestPrices:
    """The best prices of paper's trailing stops, written behind: the latest one of each
    position at most every ``every`` seconds (a trend moves it on every ticker), and every
    one still unwritten at ``close``. A crash loses at most the last second's progress: the
    stop resumes from an older best, so looser than it was, never tighter."""

    def __init__(
        self,
        store: BestPriceStore | None,
        *,
        held: Callable[[str], bool],
        every: float = STORE_EVERY,
    ) -> None:
        """``held``: whether the position of a ``link_id`` is still open (a best price set
        just before its position is stored waits for it; one of a closed position is not)."""
        self._store = store
        self._held = held
        self._every = every
        self._pending: dict[str, Decimal] = {}
        self._writer: asyncio.Task[None] | None = None

    async def load(self) -> dict[str, Decimal]:
        return await self._store.trailing_bests() if self._store is not None else {}

    def moved(self, link_id: str, best: Decimal) -> None:
        """A position's best price moved (on the loop): stored soon."""
        if self._store is None or not link_id:
            return
        self._pending[link_id] = best
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_behind(), name="trailing-bests")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._write_pending()

    async def _write_behind(self) -> None:
        while self._pending:
            await self._write_pending()
            await asyncio.sleep(self._every)  # moves meanwhile wait, and go as one

    async def _write_pending(self) -> None:
        store = self._store
        if store is None:
            return
        for link_id, best in list(self._pending.items()):
            try:
                stored = await store.set_trailing_best(link_id, best)
            except Exception as exc:  # the simulation goes on; a restart resumes looser
                log.warning("storing the trailing stop's best price of %s failed: %s", link_id, exc)
                stored = True  # not tried again: the next move is
            if not stored and self._held(link_id):
                continue  # its position is being stored: the next round
            if self._pending.get(link_id) == best:  # a newer one waits for the next round
                del self._pending[link_id]
