"""Entries: a signal that passed the filters and risk becomes a market order with SL/TP on the
venue, and then a position in the book; or a recorded reason why not.

A signal on first sight is stored with its first decision: with its pending order, in one
transaction, just before the order is sent (a crash leaves a trace that is looked up, never
re-sent), or with the reason it was not traded. Risk is checked again at the last moment, and
the position and its chat note are stored in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from trader import orders, plans, rules, sizing, take_profits
from trader.errors import ExchangeError, NotTradable
from trader.events import OrderFailed, PositionOpened, SignalSkipped
from trader.models import CloseReason, EntryOrder, ExitOrder, Position, Quote, Signal
from trader.orders import order_status, short
from trader.parts import Parts
from trader.pnl import open_position
from trader.ports import OrderRecord, OrderStatus

log = logging.getLogger(__name__)


class Entries:
    """Placing a signal's entry; its slot in the book is held until it is decided."""

    def __init__(self, parts: Parts, *, on_unsure: Callable[[str], None]) -> None:
        """``on_unsure``: called when an entry let go of its slot, so that an order whose
        outcome is unknown is reconciled."""
        self._book, self._repo, self._exchange = parts.book, parts.repo, parts.exchange
        self._clock, self._bus, self._strategy = parts.clock, parts.bus, parts.strategy
        self._on_unsure = on_unsure
        # Entries of signals on first sight, until their signal is stored and their order
        # sent (or they ended): True once stored, False if an entry ended without storing it.
        self._unsettled: dict[str, asyncio.Future[bool]] = {}

    def begin(self, signal_id: str) -> None:
        """An entry of a signal not stored yet is about to start (see ``enter``)."""
        self._unsettled[signal_id] = asyncio.get_running_loop().create_future()

    def unsettled(self, signal_id: str) -> bool:
        """Whether an entry of this signal has begun and not yet stored it and sent."""
        return signal_id in self._unsettled

    async def settled(self) -> bool:
        """Wait until every entry begun so far has stored its signal and sent its order, or
        ended; whether each stored its signal (False: one ended without, a shutdown)."""
        waiting = list(self._unsettled.values())
        results = await asyncio.gather(*(asyncio.shield(w) for w in waiting))
        return all(results)

    def _settle(self, signal_id: str, *, stored: bool) -> None:
        future = self._unsettled.pop(signal_id, None)
        if future is not None and not future.done():
            future.set_result(stored)

    async def enter(
        self, signal: Signal, margin: Decimal, *, seen_at: datetime | None = None
    ) -> None:
        """The entry of ``signal``, whose slot (``book.in_flight``) the caller reserved.
        ``seen_at``: the signal is not stored yet (first sight at that time, ``begin`` called):
        it is stored with its first decision, or with its order."""
        try:
            await self._place(signal, margin, seen_at)
        finally:
            # Released only now, when the position is in the book or the entry has failed:
            # until then the slot counts against the limits.
            self._book.in_flight.pop(signal.symbol, None)
            self._settle(signal.id, stored=False)  # if it ended before storing anything
            self._on_unsure("an order without an answer")

    async def skip(self, signal: Signal, outcome: str, *, seen_at: datetime | None = None) -> None:
        """Record ``outcome`` for ``signal``; with ``seen_at``, the signal is stored with it
        (its first sight): a signal known already is left as it is, and nothing is said."""
        now = self._clock.now()
        if not await self._store_decided(signal, outcome, seen_at, now):
            return
        await self._bus.publish(SignalSkipped(signal.id, signal.symbol, outcome, now))

    async def _store_decided(
        self, signal: Signal, outcome: str, seen_at: datetime | None, now: datetime
    ) -> bool:
        """Store the outcome; False if the signal, on first sight, was known already."""
        if seen_at is None:
            await self._repo.set_outcome(signal.id, outcome, now)
            return True
        stored = await self._repo.record_decided([(signal, outcome)], seen_at)
        self._settle(signal.id, stored=True)
        return stored == 1

    async def ask(
        self,
        signal: Signal,
        margin: Decimal,
        seen_at: datetime,
        put_question: Callable[[Signal, Quote], Awaitable[None]],
    ) -> None:
        """Confirmation mode: quote the entry of ``signal`` (first seen at ``seen_at``,
        ``begin`` called) and put the question with its figures; or record why it cannot be
        made. The trade itself waits for the answer."""
        stored = False  # until then, a shutdown leaves the row to be read again
        try:
            if await self._repo.load_signal(signal.id) is not None:
                stored = True  # acted on already (a row read again): no venue call for it
                return
            try:
                quote = await self.quote(signal, margin, self._book.limits.leverage)
            except Exception as exc:  # never let one signal kill the engine
                await self._failed(signal, orders.entry_link_id(signal.id), exc, seen_at)
                stored = True
                return
            if isinstance(quote, str):
                await self.skip(signal, f"rejected:{quote}", seen_at=seen_at)
                stored = True
            elif await self._repo.record_signal(signal, seen_at):
                stored = True
                await put_question(signal, quote)
            else:
                stored = True  # acted on already
        finally:
            self._settle(signal.id, stored=stored)

    async def quote(self, signal: Signal, margin: Decimal, asked: int) -> Quote | str:
        """The entry ``signal`` would make at the market now at leverage ``asked`` (capped at
        the instrument's maximum), or the reason it cannot be made (a ``rejected:`` outcome's
        reason). A venue that fails to answer raises."""
        side = signal.side
        assert side is not None  # screened
        try:
            instrument = await self._exchange.instrument(signal.symbol)  # loaded at start-up
            if not instrument.is_usdt_perpetual:  # a USDC perpetual or a dated future
                return "not_usdt_perpetual"
            leverage = sizing.capped_leverage(asked, instrument)
            # Leverage, position mode and price stream: ready since start-up for a
            # whitelisted symbol, so that the order is the first call to the venue.
            ticker = await self._exchange.prepare_entry(signal.symbol, leverage)
        except NotTradable as exc:
            log.warning("signal %s rejected: %s", signal.id, exc)
            return exc.reason
        # Until the stream's first update for the symbol, /status values it at this one.
        self._book.prices.setdefault(signal.symbol, ticker)
        price = ticker.fill_price(side)
        if rules.price_moved(signal, price, self._strategy):
            return "price_moved"
        stop, take = sizing.protective_prices(
            side,
            price,
            sl_pct=self._strategy.sl_pct,
            tp_pct=self._strategy.tp_pct,
            leverage=leverage,
            tick=instrument.tick_size,
        )
        sized_margin = self._margin(price, stop, leverage)
        if sized_margin == "balance_unknown":
            # Sizing from the balance, and none was read yet (the start-up read failed): ask
            # now, once. This is the only call an entry's path may make for it.
            with contextlib.suppress(ExchangeError):
                self._book.balance = await self._exchange.balance()
            sized_margin = self._margin(price, stop, leverage)
        if isinstance(sized_margin, str):
            return sized_margin
        order = sizing.size_order(sized_margin, leverage, price, instrument)
        if isinstance(order, str):
            return order
        return Quote(
            order.qty,
            order.price,
            stop,
            take,
            instrument.tick_size,
            sized_margin,
            leverage,
            asked,
            asked_margin=margin,
        )

    def _margin(self, price: Decimal, stop: Decimal, leverage: int) -> Decimal | str:
        return sizing.trade_margin(
            self._strategy,
            self._book.limits,
            balance=self._book.balance,
            price=price,
            stop=stop,
            leverage=leverage,
        )

    async def _place(self, signal: Signal, margin: Decimal, seen_at: datetime | None) -> None:
        book = self._book
        side = signal.side
        assert side is not None  # screened
        link_id = orders.entry_link_id(signal.id)
        try:
            quote = await self.quote(signal, margin, book.limits.leverage)
        except Exception as exc:  # never let one signal kill the engine
            await self._failed(signal, link_id, exc, seen_at)
            return
        if isinstance(quote, str):
            await self.skip(signal, f"rejected:{quote}", seen_at=seen_at)
            return
        leverage = quote.leverage
        order = EntryOrder(
            link_id=link_id,
            signal_id=signal.id,
            symbol=signal.symbol,
            side=side,
            qty=quote.qty,
            leverage=leverage,
            stop_loss=quote.stop_loss,
            # Several take-profits are set after the fill instead of this one.
            take_profit=None if take_profits.uses_plan(self._strategy) else quote.take_profit,
        )
        # Held until the position is stored, so an SL/TP fill that races in waits for it.
        async with book.lock(signal.symbol):
            # Checked again at the last moment: trading may have been stopped, or the daily
            # loss limit reached, while this entry awaited the venue.
            await book.refresh_day()
            late = rules.risk_reason(margin, book.risk_state(own_slot=True), book.limits)
            if late is not None:
                await self.skip(signal, f"rejected:{late}", seen_at=seen_at)
                return
            # Recorded before it is sent: after a crash the order is looked up, not re-sent.
            pending = OrderRecord(
                link_id=link_id,
                signal_id=signal.id,
                symbol=signal.symbol,
                side=side,
                qty=quote.qty,
                reduce_only=False,
                status=OrderStatus.PENDING,
                created_at=self._clock.now(),
            )
            if seen_at is None:
                await self._repo.add_order(pending)
            elif not await self._repo.add_entry_order(signal, seen_at, pending):
                log.info("signal %s was acted on before; not entering it again", signal.id)
                self._settle(signal.id, stored=True)
                return
            try:
                fill = await self._exchange.open(order)
            except Exception as exc:
                self._settle(signal.id, stored=True)
                await self._failed(signal, link_id, exc, None)
                return
            self._settle(signal.id, stored=True)  # sent: what follows writes after the order
            position = open_position(
                signal.id,
                fill,
                leverage=leverage,
                stop_loss=quote.stop_loss,
                take_profit=quote.take_profit,
                expires_at=signal.timestamp + rules.signal_ttl(signal, self._strategy),
            )
            # The strategy's trailing stop and take-profits, on the venue before the position
            # is stored: what is stored (and said) is what the venue holds.
            position, unset = await plans.place(
                self._exchange, self._strategy, position, signal, quote.tick_size
            )
            # Its chat notes are booked with the entry: a crash keeps both or neither.
            short_fill = order.qty if fill.qty < order.qty else None
            capped_from = quote.asked_leverage if quote.leverage < quote.asked_leverage else None
            opened = PositionOpened(
                position,
                self._clock.now(),
                quote.tick_size,
                ordered_qty=short_fill,
                leverage_capped_from=capped_from,
            )
            notes = self._bus.notes_for(opened)
            try:
                stored = await self._repo.record_entry(position, fill, opened.at, notes=notes)
            except Exception as exc:
                await self._abandon(signal, position, exc)
                return
            book.positions[signal.symbol] = stored
        await self._bus.publish(replace(opened, position=stored, noted=bool(notes)))
        for why in unset:  # the position stands: said after it
            now = self._clock.now()
            await self._bus.publish(OrderFailed(signal.id, signal.symbol, why, now))

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
        failed = OrderFailed(signal.id, signal.symbol, reason, self._clock.now(), at_risk=True)
        await self._bus.publish(failed)

    async def _failed(
        self, signal: Signal, link_id: str, exc: Exception, seen_at: datetime | None
    ) -> None:
        """``seen_at``: the signal is not stored yet (the entry failed before its order)."""
        if not isinstance(exc, ExchangeError):
            log.error("entry for %s failed", signal.symbol, exc_info=exc)
        reason = short(str(exc) or type(exc).__name__)
        status = order_status(exc)
        if seen_at is None and await self._repo.get_order(link_id) is not None:
            await self._repo.update_order(link_id, status, error=reason)
        now = self._clock.now()
        if not await self._store_decided(signal, f"failed:{reason}", seen_at, now):
            return
        # An order without an answer may have filled: a position may be open, unmanaged.
        unknown = status is OrderStatus.UNKNOWN
        await self._bus.publish(OrderFailed(signal.id, signal.symbol, reason, now, at_risk=unknown))
        if unknown:  # it may fill yet: reconciling will find it
            self._book.unresolved[signal.symbol] = link_id
            self._book.recheck_orders = True
