"""Entries: a signal that passed the filters and risk becomes a market order with SL/TP on the
venue, and then a position in the book; or a recorded reason why not.

The order is recorded before it is sent (a crash leaves a trace that is looked up, never
re-sent), risk is checked again at the last moment, and the position and its chat note are
stored in one transaction.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from trader import orders, rules
from trader.book import Book
from trader.clock import Clock
from trader.errors import ExchangeError, NotTradable
from trader.events import EventBus, OrderFailed, PositionOpened, SignalSkipped
from trader.exchange.base import Exchange
from trader.models import CloseReason, EntryOrder, ExitOrder, Position, Signal
from trader.orders import order_status, short
from trader.pnl import open_position
from trader.ports import OrderRecord, OrderStatus, Repositories
from trader.settings import Strategy

log = logging.getLogger(__name__)


class Entries:
    """Placing a signal's entry; its slot in the book is held until it is decided."""

    def __init__(
        self,
        *,
        book: Book,
        repo: Repositories,
        exchange: Exchange,
        clock: Clock,
        bus: EventBus,
        strategy: Strategy,
        on_unsure: Callable[[str], None],
    ) -> None:
        """``on_unsure``: called when an entry let go of its slot, so that an order whose
        outcome is unknown is reconciled."""
        self._book = book
        self._repo = repo
        self._exchange = exchange
        self._clock = clock
        self._bus = bus
        self._strategy = strategy
        self._on_unsure = on_unsure

    async def enter(self, signal: Signal, margin: Decimal) -> None:
        """The entry of ``signal``, whose slot (``book.in_flight``) the caller reserved."""
        try:
            await self._place(signal, margin)
        finally:
            # Released only now, when the position is in the book or the entry has failed:
            # until then the slot counts against the limits.
            self._book.in_flight.pop(signal.symbol, None)
            self._on_unsure("an order without an answer")

    async def skip(self, signal: Signal, outcome: str) -> None:
        now = self._clock.now()
        await self._repo.set_outcome(signal.id, outcome, now)
        await self._bus.publish(SignalSkipped(signal.id, signal.symbol, outcome, now))

    async def _place(self, signal: Signal, margin: Decimal) -> None:
        book = self._book
        side = signal.side
        assert side is not None  # screened
        leverage = book.limits.leverage
        link_id = orders.entry_link_id(signal.id)
        try:
            instrument = await self._exchange.instrument(signal.symbol)  # loaded at start-up
            if not instrument.is_usdt_perpetual:  # a USDC perpetual or a dated future
                await self.skip(signal, "rejected:not_usdt_perpetual")
                return
            # Leverage, position mode and price stream: ready since start-up for a
            # whitelisted symbol, so that the order is the first call to the venue.
            ticker = await self._exchange.prepare_entry(signal.symbol, leverage)
            # Until the stream's first update for the symbol, /status values it at this one.
            book.prices.setdefault(signal.symbol, ticker)
            sizing = rules.size_order(margin, leverage, ticker.fill_price(side), instrument)
            if isinstance(sizing, str):
                await self.skip(signal, f"rejected:{sizing}")
                return
            stop, take = rules.protective_prices(
                side,
                sizing.price,
                sl_pct=self._strategy.sl_pct,
                tp_pct=self._strategy.tp_pct,
                leverage=leverage,
                tick=instrument.tick_size,
            )
        except NotTradable as exc:
            log.warning("signal %s rejected: %s", signal.id, exc)
            await self.skip(signal, f"rejected:{exc.reason}")
            return
        except Exception as exc:  # never let one signal kill the engine
            await self._failed(signal, link_id, exc)
            return
        order = EntryOrder(
            link_id=link_id,
            signal_id=signal.id,
            symbol=signal.symbol,
            side=side,
            qty=sizing.qty,
            leverage=leverage,
            stop_loss=stop,
            take_profit=take,
        )
        # Held until the position is stored, so an SL/TP fill that races in waits for it.
        async with book.lock(signal.symbol):
            # Checked again at the last moment: trading may have been stopped, or the daily
            # loss limit reached, while this entry awaited the venue.
            await book.refresh_day()
            late = rules.risk_reason(margin, book.risk_state(own_slot=True), book.limits)
            if late is not None:
                await self.skip(signal, f"rejected:{late}")
                return
            # Recorded before it is sent: after a crash the order is looked up, not re-sent.
            await self._repo.add_order(
                OrderRecord(
                    link_id=link_id,
                    signal_id=signal.id,
                    symbol=signal.symbol,
                    side=side,
                    qty=sizing.qty,
                    reduce_only=False,
                    status=OrderStatus.PENDING,
                    created_at=self._clock.now(),
                )
            )
            try:
                fill = await self._exchange.open(order)
            except Exception as exc:
                await self._failed(signal, link_id, exc)
                return
            position = open_position(
                signal.id,
                fill,
                leverage=leverage,
                stop_loss=stop,
                take_profit=take,
                expires_at=signal.timestamp + rules.signal_ttl(signal, self._strategy),
            )
            # Its chat notes are booked with the entry: a crash keeps both or neither.
            short_fill = order.qty if fill.qty < order.qty else None
            opened = PositionOpened(
                position, self._clock.now(), instrument.tick_size, ordered_qty=short_fill
            )
            notes = self._bus.notes_for(opened)
            try:
                stored = await self._repo.record_entry(position, fill, opened.at, notes=notes)
            except Exception as exc:
                await self._abandon(signal, position, exc)
                return
            book.positions[signal.symbol] = stored
        await self._bus.publish(replace(opened, position=stored, noted=bool(notes)))

    async def _abandon(self, signal: Signal, position: Position, exc: Exception) -> None:
        """A fill the database would not take: a position we could not track is closed at
        once rather than left on the venue unmanaged."""
        log.critical("could not store the %s position; closing it", position.symbol, exc_info=exc)
        reason = f"could not store the position ({short(str(exc), 80)}); closed it at market"
        try:
            await self._exchange.close(
                ExitOrder(
                    link_id=orders.exit_link_id(signal.id),
                    symbol=position.symbol,
                    side=position.side.opposite,
                    qty=position.qty,
                    reason=CloseReason.MANUAL,
                )
            )
        except ExchangeError as close_exc:
            reason = f"could not store the position and closing it failed: {close_exc}"
            log.critical("%s position left open on the venue: %s", position.symbol, close_exc)
        with contextlib.suppress(Exception):
            await self._repo.set_outcome(signal.id, f"failed:{short(reason)}", self._clock.now())
        await self._bus.publish(OrderFailed(signal.id, signal.symbol, reason, self._clock.now()))

    async def _failed(self, signal: Signal, link_id: str, exc: Exception) -> None:
        if not isinstance(exc, ExchangeError):
            log.error("entry for %s failed", signal.symbol, exc_info=exc)
        reason = short(str(exc) or type(exc).__name__)
        status = order_status(exc)
        if await self._repo.get_order(link_id) is not None:
            await self._repo.update_order(link_id, status, error=reason)
        now = self._clock.now()
        await self._repo.set_outcome(signal.id, f"failed:{reason}", now)
        await self._bus.publish(OrderFailed(signal.id, signal.symbol, reason, now))
        if status is OrderStatus.UNKNOWN:  # it may fill yet: reconciling will find it
            self._book.unresolved[signal.symbol] = link_id
            self._book.recheck_orders = True
