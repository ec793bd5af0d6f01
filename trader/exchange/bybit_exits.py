"""Exits Bybit makes by itself: SL, TP, a trailing stop, a liquidation, an auto-deleveraging,
a delivery, a close by hand in Bybit's app. Which positions we hold there, what the position
pushes say of them, settling each such exit once (from the pushes, else by REST), and the REST
poll that covers them while the private stream is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from trader.clock import Clock
from trader.exchange.base import Listener, PositionExited, StopLossMissing, VenuePosition
from trader.exchange.bybit_fills import Pushes
from trader.exchange.bybit_orders import STREAM_GRACE, BybitOrders
from trader.models import CloseReason, Fill

log = logging.getLogger(__name__)


class ExchangeExits:
    """The positions we hold on Bybit and the exits it makes of them, each told to the
    listener once as ``PositionExited`` (``flat``: it holds none of the position now)."""

    def __init__(
        self,
        pushes: Pushes,
        orders: BybitOrders,
        *,
        clock: Clock,
        listener: Callable[[], Listener | None],
        open_positions: Callable[[], Awaitable[list[VenuePosition]]],
        may_poll: Callable[[], bool],
        poll_interval: float,
    ) -> None:
        """``may_poll``: whether REST should cover exits now (the stream is down and Bybit
        takes calls)."""
        self._pushes = pushes
        self._orders = orders
        self._clock = clock
        self._listener = listener
        self._open_positions = open_positions
        self._may_poll = may_poll
        self._poll_interval = poll_interval
        # Symbol → since when we hold a position there (a close counts from then on).
        self._held: dict[str, datetime] = {}
        self._sizes: dict[str, Decimal] = {}  # symbol → the size Bybit last said it holds
        self._flat: dict[str, datetime] = {}  # symbol → time of its last push, if flat
        self._booked: set[str] = set()  # exits reported (order ids, "exec:" + exec id)
        self._closing: set[str] = set()  # our own close in flight
        self._placing: set[str] = set()  # entries sent, fill not yet known
        self._settling: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._poller = asyncio.create_task(self._poll(), name="bybit-exit-poller")

    async def stop(self) -> None:
        tasks = [t for t in (self._poller, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- what we hold ----------------------------------------------------------------------

    def hold(self, symbol: str, since: datetime, qty: Decimal) -> None:
        """We hold a position of ``qty`` on ``symbol`` from ``since`` (an entry, an adoption)."""
        self._held[symbol] = since
        self._sizes[symbol] = qty
        flat_at = self._flat.get(symbol)
        if flat_at is not None and flat_at >= since:
            self._spawn_settle(symbol)  # closed again while we waited for the fill

    @contextmanager
    def placing(self, symbol: str) -> Iterator[None]:
        """An entry in flight: marked from before sending, as an SL/TP push may beat the
        order's own answer."""
        self._placing.add(symbol)
        try:
            yield
        finally:
            self._placing.discard(symbol)

    @contextmanager
    def closing(self, symbol: str) -> Iterator[None]:
        """Our own close in flight: a flat push is ours, not an exit Bybit made."""
        self._closing.add(symbol)
        try:
            yield
        finally:
            self._closing.discard(symbol)

    def closed_by_us(self, symbol: str, order_id: str | None, fill: Fill, ordered: Decimal) -> None:
        """Our close filled: the engine books it, so it is never reported again. One that
        filled in part (an IOC order meets its price band) leaves the rest held."""
        if order_id:
            self._booked.add(order_id)
        if fill.qty >= ordered:
            self._held.pop(symbol, None)
        elif self.flat_since_held(symbol):
            # Bybit trimmed our order to what was left: something else (its SL, say) closed
            # the rest meanwhile. That exit is settled and reported like any other.
            self._spawn_settle(symbol)

    def flat_since_held(self, symbol: str) -> bool:
        flat_at, since = self._flat.get(symbol), self._held.get(symbol)
        return flat_at is not None and since is not None and flat_at >= since

    def settle(self, symbol: str) -> None:
        """The position is gone on Bybit (nothing to reduce, say): settle its close."""
        self._spawn_settle(symbol)

    async def exits(self, symbol: str, since: datetime) -> list[tuple[Fill, CloseReason]]:
        """Every exit of ``symbol`` since ``since`` not reported yet, read by REST."""
        found = await self._orders.exits(symbol, since, self._booked)
        return [(fill, reason) for _, fill, reason in found]

    # --- what the stream pushes --------------------------------------------------------------

    def on_position(self, position: VenuePosition) -> None:
        """A position push, on the loop."""
        symbol = position.symbol
        if position.qty > 0:
            self._flat.pop(symbol, None)
        else:
            self._flat[symbol] = position.updated_at or self._clock.now()
        known = self._sizes.get(symbol)
        self._sizes[symbol] = position.qty
        if not self._exchange_made(symbol):
            return
        listener = self._listener()
        if position.qty > 0 and position.stop_loss is None and listener is not None:
            listener(StopLossMissing(symbol))
        if position.qty == 0:
            self._spawn_settle(symbol)
        elif known is not None and position.qty < known:
            # Shrunk without closing: a laddered liquidation or an auto-deleveraging.
            self._spawn_settle(symbol, flat=False)

    def _exchange_made(self, symbol: str) -> bool:
        """A change of ``symbol`` we neither sent nor are still opening."""
        return symbol in self._held and symbol not in self._closing and symbol not in self._placing

    def _spawn_settle(self, symbol: str, *, flat: bool = True) -> None:
        if symbol in self._settling:
            return
        self._settling.add(symbol)
        task = asyncio.create_task(self._settle(symbol, flat), name=f"bybit-settle-{symbol}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, symbol: str, flat: bool) -> None:
        """Report the exits of ``symbol`` the exchange made (``flat``: it holds none of the
        position now; else it shrank): from the pushes when they are complete, else (for a
        flat position) from REST."""
        since = self._held.get(symbol)
        try:
            if since is None:
                return
            exits = self._pushes.closes_since(symbol, since, self._booked, orderless=False)
            if not exits:
                await self._pushes.changed(STREAM_GRACE)
                exits = self._pushes.closes_since(symbol, since, self._booked, orderless=True)
            if not exits and flat:
                # Not from the stream's pushes: the stream was down, or they are late.
                exits = await self._orders.exits(symbol, since, self._booked)
            if not exits:
                if flat:
                    log.warning("%s is flat on Bybit but its closing fill is not visible", symbol)
                return  # the poller or the next reconciliation tries again
            for number, (key, fill, reason) in enumerate(exits, start=1):
                self._report(symbol, key, fill, reason, flat=flat and number == len(exits))
        except Exception as exc:
            log.warning("settling the close of %s failed: %s", symbol, exc)
        finally:
            self._settling.discard(symbol)

    def _report(
        self, symbol: str, key: str, fill: Fill, reason: CloseReason, *, flat: bool
    ) -> None:
        since = self._held.get(symbol)
        if since is None or fill.at < since or key in self._booked:
            return  # reported already, or the close of an earlier position
        self._booked.add(key)
        if flat:
            del self._held[symbol]
        listener = self._listener()
        if listener is not None:
            listener(PositionExited(symbol, fill, reason, flat=flat))

    # --- REST polling while the stream is down -----------------------------------------------

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            if not self._may_poll():
                continue
            try:
                await self._check_by_rest()
            except Exception as exc:
                log.warning("checking Bybit positions failed: %s", exc)

    async def _check_by_rest(self) -> None:
        """Positions we hold that Bybit no longer has were closed there (SL/TP, or by hand)."""
        watched = [s for s in self._held if self._exchange_made(s)]
        if not watched:
            return
        open_now = {p.symbol for p in await self._open_positions()}
        for symbol in watched:
            if symbol not in open_now and self._exchange_made(symbol):
                self._spawn_settle(symbol)
