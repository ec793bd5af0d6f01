"""Reconciliation applied: the venue's positions and our orders against the book, at start-up,
after a stream gap or a ban, every minute, and when a stop-loss goes missing. What differs is
repaired under the symbol's lock and said in chat, one line each (``trader.reconcile`` decides
what differs and words it; this module asks the venue and changes the book).
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from trader import plans, reconcile
from trader.errors import ExchangeError
from trader.events import PositionOpened, Reconciled
from trader.exchange.base import VenuePosition
from trader.exits import Exits
from trader.models import ClosedTrade, CloseReason, Fill, Position
from trader.orders import short
from trader.parts import Parts
from trader.ports import OrderRecord, OrderStatus

log = logging.getLogger(__name__)

Venue = dict[str, VenuePosition]


class Reconciler:
    """Keeps the book true to the venue; the stop watchdog is part of it."""

    def __init__(self, parts: Parts, *, exits: Exits) -> None:
        self._book, self._repo, self._exchange = parts.book, parts.repo, parts.exchange
        self._clock, self._bus, self._tasks = parts.clock, parts.bus, parts.tasks
        self._strategy = parts.strategy
        self._exits = exits
        self._running = asyncio.Lock()
        self._last_check: tuple[str, ...] = ()  # what the last periodic check reported
        # Take-profits Bybit said were cancelled, not checked yet (the position was busy or
        # moving, or Bybit did not answer): the price named (None: any), tried every minute.
        self._tp_pending: dict[str, Decimal | None] = {}

    async def check_every(self, seconds: float) -> None:
        """Reconcile every ``seconds`` even while the stream looks healthy: a push lost on a
        live connection, or a stop-loss removed by hand, is found within that time. A
        finding already reported by the last check is not repeated, except alarms (a
        position without a stop-loss), which are said until fixed."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.run("periodic check", periodic=True)
            except Exception:
                log.exception("periodic check against the venue failed")

    def if_unsure(self, trigger: str) -> None:
        """Once an order whose outcome is unknown has let go of its symbol, reconcile."""
        if self._book.recheck_orders:
            self._book.recheck_orders = False
            self._tasks.spawn(self.run(trigger), "reconcile")

    async def run(
        self, trigger: str, *, startup: bool = False, periodic: bool = False
    ) -> list[str]:
        """Compare the venue's positions and orders with the database, repair what differs,
        and report it in chat (``Reconciled``). At ``startup`` every order a crash left
        pending is looked up; later, only those whose outcome was unknown."""
        async with self._running:
            try:
                venue = await self._venue()
            except ExchangeError as exc:
                return await self._unreachable(trigger, exc, startup=startup, periodic=periodic)
            findings = await self._resolve_orders(venue, startup=startup)
            found = reconcile.Diff()
            try:  # again: the lookups took time, and closes may have happened meanwhile
                venue = await self._venue()
                found = reconcile.diff(self._book.positions, venue, self._book.busy())
            except ExchangeError as exc:
                log.error("reconciling (%s) failed: %s", trigger, exc)
                findings.append(reconcile.said_unreachable(short(str(exc), 120)))
            findings += await self._guard_stops(venue)  # those adopted below are said so
            # After a restart or a gap: what may have happened unseen; every minute: the
            # cancels Bybit pushed that could not be checked then.
            findings += await self._guard_take_profits(pending_only=periodic)
            for position in found.vanished:
                findings.append(await self._settle_vanished(position))
            for venue_position in found.unknown:
                findings.append(await self._adopt_unknown(venue_position))
            for position, venue_position in found.mismatched:
                findings.append(await self._settle_shrunk(position, venue_position))
            findings = [f for f in findings if f]
            if periodic:
                findings, self._last_check = (
                    reconcile.news(findings, self._last_check),
                    tuple(findings),
                )
            if findings:
                log.warning("reconciled (%s): %s", trigger, "; ".join(findings))
                await self._bus.publish(Reconciled(trigger, tuple(findings), self._clock.now()))
            else:
                log.info("reconciled (%s): the venue agrees with the database", trigger)
            return findings

    async def _venue(self) -> Venue:
        return {p.symbol: p for p in await self._exchange.positions()}

    async def _unreachable(
        self, trigger: str, exc: ExchangeError, *, startup: bool, periodic: bool
    ) -> list[str]:
        log.error("reconciling (%s) failed: %s", trigger, exc)
        if startup:  # looked up at the next reconciliation instead
            for order in await self._repo.orders_with_status(OrderStatus.PENDING):
                await self._repo.update_order(order.link_id, OrderStatus.UNKNOWN)
                if not order.reduce_only:
                    self._book.unresolved.setdefault(order.symbol, order.link_id)
        finding = reconcile.said_unreachable(short(str(exc), 120))
        if periodic:  # said once while it lasts, not every minute
            if self._last_check == (finding,):
                return []
            self._last_check = (finding,)
        await self._bus.publish(Reconciled(trigger, (finding,), self._clock.now()))
        return [finding]

    # --- orders a crash or a lost answer left undecided ------------------------------------

    async def _resolve_orders(self, venue: Venue, *, startup: bool) -> list[str]:
        """Orders a crash or a lost answer left undecided, looked up by ``orderLinkId``."""
        book = self._book
        statuses = (OrderStatus.PENDING, OrderStatus.UNKNOWN) if startup else (OrderStatus.UNKNOWN,)
        held = {p.link_id for p in book.positions.values()}
        findings: list[str] = []
        for order in await self._repo.orders_with_status(*statuses):
            if order.link_id in held:
                await self._repo.update_order(order.link_id, OrderStatus.FILLED)
                continue
            if order.symbol in book.busy():
                continue
            try:
                findings.append(await self._resolve_order(order, venue))
            except Exception as exc:  # one order must not stop the others being checked
                log.exception("resolving order %s failed", order.link_id)
                await self._repo.update_order(order.link_id, OrderStatus.UNKNOWN, error=str(exc))
                findings.append(reconcile.said_unchecked(order.symbol, order.link_id, str(exc)))
        for order in await self._repo.orders_with_status(OrderStatus.UNKNOWN):
            if not order.reduce_only:  # still unknown: its symbol stays taken
                book.unresolved.setdefault(order.symbol, order.link_id)
        return findings

    async def _resolve_order(self, order: OrderRecord, venue: Venue) -> str:
        fill = await self._exchange.find_order(order.link_id)
        if self._book.unresolved.get(order.symbol) == order.link_id:
            del self._book.unresolved[order.symbol]
        if fill is None:
            await self._repo.update_order(order.link_id, OrderStatus.FAILED, error="interrupted")
            if self._exchange.mode == "live":
                return reconcile.said_never_placed(order.symbol, order.link_id)
            return ""
        if order.reduce_only:  # an exit that went through: the position diff closes it
            await self._repo.update_order(order.link_id, OrderStatus.FILLED)
            return ""
        return await self._recover_entry(order.signal_id, fill, venue)

    async def _recover_entry(self, signal_id: str, fill: Fill, venue: Venue) -> str:
        """An entry the venue filled while the bot lost track of it: recorded now."""
        book = self._book
        async with book.lock(fill.symbol):
            held = book.positions.get(fill.symbol)
            if held is not None:  # adopted meanwhile as an unknown position: keep that one
                await self._repo.update_order(fill.link_id, OrderStatus.FILLED)
                return (
                    f"{fill.symbol}: entry {fill.link_id} was filled on Bybit; the position "
                    f"is already tracked (as {held.signal_id})"
                )
            signal = await self._repo.load_signal(signal_id)
            instrument = await self._exchange.instrument(fill.symbol)
            found = venue.get(fill.symbol)
            position = reconcile.recovered_entry(
                signal_id,
                fill,
                signal=signal,
                venue=found,
                strategy=self._strategy,
                limits=book.limits,
                tick=instrument.tick_size,
            )
            # Its trailing stop and take-profits: adopted where the entry set them before the
            # crash, placed where it had not (never twice), before it is stored, as an entry.
            position, unset = await plans.restore(
                self._exchange, self._strategy, position, signal, found, instrument.tick_size
            )
            opened = PositionOpened(position, self._clock.now(), instrument.tick_size)
            notes = self._bus.notes_for(opened)  # booked with the entry
            stored = await self._repo.record_entry(position, fill, opened.at, notes=notes)
            book.positions[stored.symbol] = stored
            await self._exchange.adopt([stored])
        await self._bus.publish(
            PositionOpened(stored, opened.at, opened.tick_size, noted=bool(notes))
        )
        return "; ".join([reconcile.said_recovered(stored), *unset])

    # --- positions that differ ---------------------------------------------------------------

    async def _settle_vanished(self, position: Position) -> str:
        """A recorded position the venue no longer holds: closed there, unseen by us."""
        book = self._book
        async with book.lock(position.symbol):
            if book.positions.get(position.symbol) is not position:
                return ""  # settled meanwhile (its close was reported after all)
            exits = await self._exits_of(position)
            if not exits:
                return reconcile.said_missing(position)
            trades: list[ClosedTrade] = []
            for number, (fill, reason) in enumerate(exits, start=1):
                held = book.positions.get(position.symbol)
                if held is None:
                    break
                # The venue is flat: its last exit closes whatever is still recorded.
                booked = await self._exits.book_exit(
                    held, fill, reason, closes_all=number == len(exits)
                )
                trades += [booked] if booked is not None else []
            if position.symbol in book.positions:
                return reconcile.said_missing(book.positions[position.symbol])
        return reconcile.said_closed(trades)

    async def _settle_shrunk(self, position: Position, found: VenuePosition) -> str:
        """A position the venue holds less of than recorded: the exits that took the rest
        (a partial liquidation or auto-deleveraging whose push was lost) are booked."""
        book = self._book
        if found.side is position.side and found.qty < position.qty:
            async with book.lock(position.symbol):
                trades: list[ClosedTrade] = []
                for fill, reason in await self._exits_of(position):
                    held = book.positions.get(position.symbol)
                    if held is None or held.qty <= found.qty:
                        break
                    booked = await self._exits.book_exit(held, fill, reason)
                    trades += [booked] if booked is not None else []
                held = book.positions.get(position.symbol)
            if held is not None and held.qty == found.qty:
                return reconcile.said_shrunk(held, trades)
            position = held or position
        return reconcile.said_mismatched(position, found)

    async def _exits_of(self, position: Position) -> list[tuple[Fill, CloseReason]]:
        try:
            return await self._exchange.exits_since(position.symbol, position.opened_at)
        except ExchangeError as exc:
            log.warning("looking up the exits of %s failed: %s", position.symbol, exc)
            return []

    async def _adopt_unknown(self, found: VenuePosition) -> str:
        """A venue position the bot never recorded: taken over so that it is tracked."""
        book = self._book
        async with book.lock(found.symbol):
            if found.symbol in book.positions or found.side is None:
                return ""
            # Asked again under the lock: a close recorded since the snapshot must not come
            # back as an "unknown" position.
            now_there = await self._venue()
            if found.symbol not in now_there or found.symbol in book.busy():
                return ""
            stored = await self._repo.add_position(reconcile.adopted(found, self._clock.now()))
            book.positions[stored.symbol] = stored
            await self._exchange.adopt([stored])
        return reconcile.said_adopted(stored)

    # --- the stop watchdog -------------------------------------------------------------------

    async def _guard_take_profits(self, *, pending_only: bool = False) -> list[str]:
        """The take-profits of each position's plan that have not filled are still on the
        venue; one gone (cancelled there by hand) leaves the plan, and is said, not placed
        again (the trader took it away). ``pending_only``: only those Bybit said were
        cancelled and that could not be checked then."""
        book, findings = self._book, []
        for symbol in list(self._tp_pending):
            position = book.positions.get(symbol)
            if position is None or position.take_profits is None:
                del self._tp_pending[symbol]  # closed, or no TP left: nothing to check
        for symbol, position in list(book.positions.items()):
            if position.take_profits is None or symbol in book.busy():
                continue
            if pending_only and symbol not in self._tp_pending:
                continue
            only = self._tp_pending.get(symbol) if pending_only else None
            try:
                finding = await self._check_take_profits(position, only)
            except ExchangeError as exc:
                log.warning("%s: take-profits on the venue not checked: %s", symbol, exc)
                continue
            if finding is not None:
                self._tp_pending.pop(symbol, None)
                findings.append(finding)
        return findings

    async def _check_take_profits(
        self, position: Position, only: Decimal | None = None
    ) -> str | None:
        """What was found gone, said ("" nothing); None when it could not be told (the
        position changed or its size moved meanwhile): to be checked again."""
        book, symbol = self._book, position.symbol
        async with book.lock(symbol):
            # The orders, the size, the orders and the size again: a take-profit leaves the
            # open orders as it triggers, a moment before its fill shrinks the position. One
            # missing from both reads of the orders while the size stood still over all four
            # (round trips apart) was cancelled, not filled; one that filled meanwhile shows
            # as a smaller size, which the size check books from its fill.
            held = list(await self._exchange.take_profit_orders(symbol))
            first = (await self._venue()).get(symbol)
            held += await self._exchange.take_profit_orders(symbol)
            second = (await self._venue()).get(symbol)
            if book.positions.get(symbol) is not position or first is None or second is None:
                return None  # changed meanwhile: the next check looks again
            if not first.qty == second.qty == position.qty:
                return None  # a part not booked yet: the size check books it first
            kept, gone = reconcile.without_gone_take_profits(position, held, only=only)
            if not gone or not await self._repo.set_stop_and_plan(kept):
                return ""
            book.positions[symbol] = kept
        before = position.take_profits
        dropped = (
            before is not None
            and before.breakeven_after is not None
            and (kept.take_profits is None or kept.take_profits.breakeven_after is None)
        )
        return reconcile.said_take_profits_gone(position, gone, breakeven_dropped=dropped)

    async def _guard_stops(self, venue: Venue) -> list[str]:
        """Every position we manage has its stop-loss on the venue; one found without it
        gets it back at the recorded level, or an alarm."""
        findings = []
        for symbol, position in list(self._book.positions.items()):
            found = venue.get(symbol)
            if symbol in self._book.busy() or found is None or found.stop_loss is not None:
                continue
            findings.append(await self._restore_stop(position))
        return findings

    async def _restore_stop(self, position: Position) -> str:
        if position.stop_loss <= 0:
            return reconcile.said_no_stop(position)
        ticker = self._book.prices.get(position.symbol)
        if ticker is not None and position.side.sign * (ticker.last - position.stop_loss) <= 0:
            # The price is past the stop already: Bybit would refuse it there, and the
            # position is where its stop-loss should have closed it. Closed at market.
            log.error("%s: no stop-loss and the price is past it; closing", position.symbol)
            self._tasks.spawn(
                self._exits.close_quietly(position.symbol, CloseReason.STOP_LOSS),
                f"stop-close-{position.symbol}",
            )
            return reconcile.said_stop_crossed(position, ticker.last)
        try:
            await self._exchange.set_stop_loss(position.symbol, position.stop_loss)
        except ExchangeError as exc:
            log.error("%s has no stop-loss and restoring it failed: %s", position.symbol, exc)
            return reconcile.said_stop_not_restored(position, short(str(exc), 120))
        log.warning("%s had no stop-loss on the venue; restored", position.symbol)
        return reconcile.said_stop_restored(position)

    async def take_profit_cancelled(self, symbol: str, price: Decimal | None) -> None:
        """The venue pushed a partial take-profit of ours (at ``price``, where it said)
        cancelled by hand: the plan is checked against the venue now, not at the next
        restart or gap, for that take-profit only."""
        async with self._running:  # every reader of the pending cancels holds it too
            # Until checked: a second cancel before then widens the check to any take-profit;
            # one that cannot be checked now (busy, no answer) is tried the next minute.
            self._tp_pending[symbol] = price if symbol not in self._tp_pending else None
            findings = [f for f in await self._guard_take_profits(pending_only=True) if f]
        if findings:
            said = Reconciled(
                "a take-profit was cancelled on Bybit", tuple(findings), self._clock.now()
            )
            await self._bus.publish(said)

    async def stop_loss_missing(self, symbol: str) -> None:
        """The venue pushed a position of ours without a stop-loss: checked by REST (a push
        can be a passing state) and restored at once, not at the next periodic check."""
        async with self._running:
            if symbol not in self._book.positions or symbol in self._book.busy():
                return
            try:
                venue = await self._venue()
            except ExchangeError as exc:
                log.warning("checking the stop-loss of %s failed: %s", symbol, exc)
                return
            if symbol not in self._book.positions or symbol in self._book.busy():
                return  # closed or being closed while we asked
            findings = await self._guard_stops({symbol: venue[symbol]} if symbol in venue else {})
        if findings:
            await self._bus.publish(
                Reconciled("a stop-loss went missing", tuple(findings), self._clock.now())
            )
