"""Exits: closing a position with a reduce-only order (TTL, ``/close``, the daily-loss stop),
booking the exits the venue made by itself (SL, TP, liquidation, ...), whole or in part, and
the daily-loss stop that follows a losing close.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from trader import orders, rules, take_profits
from trader.errors import Banned, ExchangeError, NoPosition, OutcomeUnknown
from trader.events import (
    DailyLossLimitReached,
    DailyProfitTargetReached,
    OrderFailed,
    PositionClosed,
    PositionReduced,
)
from trader.exchange.base import PositionExited
from trader.models import ClosedTrade, CloseReason, ExitOrder, Fill, Position
from trader.orders import order_status, short
from trader.parts import Parts
from trader.pnl import close_part
from trader.ports import FillAlreadyBooked, OrderRecord, OrderStatus

log = logging.getLogger(__name__)

LOSS_ANNOUNCED_KEY = "daily_loss_announced"
PROFIT_ANNOUNCED_KEY = "daily_profit_announced"
BREAKEVEN_RETRY = timedelta(minutes=1)  # after a failed breakeven move
CLOSE_RETRY_DELAY = timedelta(seconds=30)


class Exits:
    """How positions leave the book."""

    def __init__(self, parts: Parts, *, on_unsure: Callable[[str], None]) -> None:
        """``on_unsure``: called when a close let go of its symbol, so that an order whose
        outcome is unknown is reconciled."""
        self._book, self._repo, self._exchange = parts.book, parts.repo, parts.exchange
        self._clock, self._bus, self._tasks = parts.clock, parts.bus, parts.tasks
        self._on_unsure = on_unsure

    async def close(self, symbol: str, reason: CloseReason) -> ClosedTrade | None:
        """Close one position with a reduce-only market order; None if it is already gone.
        A close that filled in part books that part; the rest stays open."""
        book = self._book
        if symbol in book.closing:
            return None
        book.closing.add(symbol)
        try:
            async with book.lock(symbol):
                position = book.positions.get(symbol)
                if position is None:
                    return None
                order = await self._exit_order(position, reason)
                try:
                    fill = await self._exchange.close(order)
                except NoPosition as exc:
                    # An SL/TP trigger got there first; its close is recorded once we let go
                    # (and a due TTL does not send another order at every ticker meanwhile).
                    log.info("%s was already closed on the venue", symbol)
                    book.retry_close_at[symbol] = self._clock.now() + CLOSE_RETRY_DELAY
                    await self._order_done(order.link_id, OrderStatus.REJECTED, str(exc))
                    return None
                except Banned as exc:
                    # Nothing was sent; tried again when the ban ends, and chat was told of
                    # the ban once (not of every close it holds up).
                    book.retry_close_at[symbol] = exc.until or (
                        self._clock.now() + CLOSE_RETRY_DELAY
                    )
                    await self._order_done(order.link_id, OrderStatus.FAILED, short(str(exc)))
                    log.warning("closing %s waits for the ban to end: %s", symbol, exc)
                    raise
                except ExchangeError as exc:
                    book.retry_close_at[symbol] = self._clock.now() + CLOSE_RETRY_DELAY
                    reason_text = short(str(exc))
                    await self._order_done(order.link_id, order_status(exc), reason_text)
                    book.recheck_orders |= isinstance(exc, OutcomeUnknown)
                    log.error("closing %s failed: %s", symbol, reason_text)
                    await self._bus.publish(
                        OrderFailed(
                            position.signal_id, symbol, reason_text, self._clock.now(), at_risk=True
                        )
                    )
                    raise
                await self._repo.update_order(order.link_id, OrderStatus.FILLED)
                return await self.book_exit(position, fill, reason)
        finally:
            book.closing.discard(symbol)
            self._on_unsure("a close without an answer")

    async def close_quietly(self, symbol: str, reason: CloseReason) -> None:
        with contextlib.suppress(ExchangeError):
            await self.close(symbol, reason)

    async def expire_due(self) -> None:
        """Close every position whose TTL has passed."""
        due = [p.symbol for p in self._book.positions.values() if self._book.close_due(p)]
        for symbol in due:
            await self.close_quietly(symbol, CloseReason.TTL)

    async def venue_closed(self, event: PositionExited) -> None:
        """The venue closed (all or part of) a position by itself."""
        async with self._book.lock(event.symbol):
            position = self._book.positions.get(event.symbol)
            if position is None:
                log.warning("exchange closed %s, which the engine does not hold", event.symbol)
                return
            if event.fill.at < position.opened_at:
                log.warning("ignoring a close of %s older than its position", event.symbol)
                return
            if event.flat and event.fill.qty < position.qty:
                # Flat after an exit smaller than what we hold: an earlier part (a partial
                # liquidation or ADL whose push was lost) is booked first, with its figures.
                held = await self._book_missed_parts(position, event.fill)
                if held is None:
                    return
                position = held
            await self.book_exit(position, event.fill, event.reason, closes_all=event.flat)

    async def _book_missed_parts(self, position: Position, last: Fill) -> Position | None:
        try:
            exits = await self._exchange.exits_since(position.symbol, position.opened_at)
        except ExchangeError as exc:
            log.warning("looking up the exits of %s failed: %s", position.symbol, exc)
            exits = []
        held: Position | None = position
        for fill, reason in sorted(exits, key=lambda item: item[0].at):
            if held is None or fill.at > last.at or fill.exec_id == last.exec_id:
                continue
            if fill.qty < held.qty:
                await self.book_exit(held, fill, reason)
                held = self._book.positions.get(position.symbol)
        return held

    async def _exit_order(self, position: Position, reason: CloseReason) -> ExitOrder:
        """The closing order of ``position``, recorded before it is sent. Each attempt has
        its own ``orderLinkId`` (Bybit refuses a link id it has seen)."""
        attempt = await self._repo.count_exit_orders(position.signal_id)
        order = ExitOrder(
            link_id=orders.exit_link_id(position.signal_id, attempt),
            symbol=position.symbol,
            side=position.side.opposite,
            qty=position.qty,
            reason=reason,
        )
        await self._repo.add_order(
            OrderRecord(
                link_id=order.link_id,
                signal_id=position.signal_id,
                symbol=order.symbol,
                side=order.side,
                qty=order.qty,
                reduce_only=True,
                status=OrderStatus.PENDING,
                created_at=self._clock.now(),
            )
        )
        return order

    async def _order_done(self, link_id: str, status: OrderStatus, error: str) -> None:
        with contextlib.suppress(Exception):  # the order's record must not mask its outcome
            await self._repo.update_order(link_id, status, error=error)

    async def book_exit(
        self, position: Position, fill: Fill, reason: CloseReason, *, closes_all: bool = False
    ) -> ClosedTrade | None:
        """Book an exit fill: a fill for less than the position books the part it took and
        the rest stays open and managed, unless ``closes_all`` (the venue is flat after it).
        None when the fill was booked before (a push and a REST read of one exit)."""
        assert position.id is not None
        book = self._book
        trade, rest = close_part(position, fill, reason, closes_all=closes_all)
        if rest is not None and reason is CloseReason.TAKE_PROFIT and rest.take_profits:
            # Counted from take-profit fills alone: any other shrink is no TP.
            plan = rest.take_profits.took(trade.qty, fill.trigger_price)
            rest = replace(rest, take_profits=plan)
        elif rest is not None and rest.take_profits:
            # Any other shrink: the venue cuts the take-profits to what is left.
            rest = take_profits.holding(rest, take_profits.shrunk(rest.take_profits, rest.qty))
        tick = await self.tick_size(position.symbol)
        # The last part: the trade is the sum of its parts.
        earlier = await self.earlier_parts(trade) if rest is None else ()
        held = position.take_profits
        moved = (  # and the stop that filled is that one (not one moved by hand on Bybit)
            held is not None
            and held.breakeven_moved
            and reason is CloseReason.STOP_LOSS
            and fill.trigger_price in (None, held.breakeven_price)
        )
        closed = PositionClosed(trade, tick, earlier=earlier, at_breakeven=moved)
        # Its chat notes are booked with the exit: a crash keeps both or neither.
        level = take_profits.level_number(position.take_profits, fill.trigger_price)
        reduced = (
            PositionReduced(trade, rest, tick, take_profit=level) if rest is not None else None
        )
        notes = self._bus.notes_for(closed if reduced is None else reduced)
        try:
            if rest is None:
                trade = await self._repo.close_position(position.id, trade, fill, notes=notes)
            else:
                trade = await self._repo.reduce_position(rest, trade, fill, notes=notes)
        except FillAlreadyBooked:
            log.info("%s: exit fill %s was booked already", position.symbol, fill.exec_id)
            return None
        if rest is None:
            book.positions.pop(position.symbol, None)
            book.retry_close_at.pop(position.symbol, None)
            # Flat: the cooldown weighs the trade, all its parts.
            book.cooldowns.record(trade.symbol, trade.closed_at, closed.total)
        else:
            book.positions[position.symbol] = rest
        await book.refresh_day(force=True)
        if rest is None:
            await self._bus.publish(replace(closed, trade=trade, noted=bool(notes)))
        else:
            # A take-profit of the plan is the plan working; any other part is worth a look.
            log.log(
                logging.INFO if reason is CloseReason.TAKE_PROFIT else logging.WARNING,
                "%s: %s of %s closed (%s), %s stays open",
                position.symbol,
                fill.qty,
                position.qty,
                reason.value,
                rest.qty,
            )
            assert reduced is not None
            await self._bus.publish(replace(reduced, trade=trade, noted=bool(notes)))
            if take_profits.breakeven_due(rest) is not None:
                # After the part is stored (a fill booked twice moves nothing), and off this
                # path: the next part may follow at once (Bybit flat: nothing to move).
                self._tasks.spawn(self.move_to_breakeven(rest.symbol), "breakeven")
        await self._check_daily_loss()
        await self.check_profit_target()
        return trade

    async def move_to_breakeven(self, symbol: str, *, ask_venue: bool = False) -> None:
        """Move the stop-loss of ``symbol``'s position to its breakeven price when due: the
        venue first, then stored. A failure is tried again each minute
        (``due_breakeven_moves``) and said once the retry fails too; a position gone
        meanwhile (its next part closed it) needs no move and no word. ``ask_venue`` (at
        start-up): a stop the venue holds at the breakeven price already is stored as moved,
        not sent again."""
        book = self._book
        position = book.positions.get(symbol)
        retry_at = book.breakeven_retry_at.get(symbol)
        if position is None or take_profits.breakeven_due(position) is None:
            book.breakeven_retry_at.pop(symbol, None)
            book.breakeven_told.discard(symbol)
            return
        if (retry_at is not None and self._clock.now() < retry_at) or symbol in book.moving:
            return
        book.moving.add(symbol)  # one move at a time: the venue is asked once
        try:
            held = await self._held_stop(symbol) if ask_venue else None
            tell = await self._breakeven(position, retry_at, held)
        finally:
            book.moving.discard(symbol)
        if tell is not None:
            failed = OrderFailed(position.signal_id, symbol, tell, self._clock.now())
            await self._bus.publish(failed)

    async def _held_stop(self, symbol: str) -> Decimal | None:
        """The stop-loss the venue holds on ``symbol``; None when unknown (it is asked)."""
        try:
            found = [p for p in await self._exchange.positions() if p.symbol == symbol]
        except ExchangeError as exc:
            log.warning("%s: the stop-loss on the venue is unknown: %s", symbol, exc)
            return None
        return found[0].stop_loss if found else None

    async def _breakeven(
        self, position: Position, retry_at: datetime | None, held_stop: Decimal | None = None
    ) -> str | None:
        """The move itself, and what chat must be told of it (None: nothing)."""
        book, symbol = self._book, position.symbol
        moved, problem = await take_profits.move_to_breakeven(
            self._exchange, position, held_stop=held_stop
        )
        async with book.lock(symbol):
            current = book.positions.get(symbol)
            if current is None or current.qty != position.qty:
                return None  # closed or changed meanwhile: the move is moot, or due anew
            if problem is None:
                if await self._repo.set_stop_and_plan(moved):
                    book.positions[symbol] = moved
                book.breakeven_retry_at.pop(symbol, None)
                return None
            # A first refusal is often moot (the next TP closed the rest at that moment):
            # said only when the retry a minute later fails too, and then once.
            book.breakeven_retry_at[symbol] = self._clock.now() + BREAKEVEN_RETRY
            if retry_at is None or symbol in book.breakeven_told:
                return None
            book.breakeven_told.add(symbol)
            return problem

    async def due_breakeven_moves(self) -> None:
        """The engine's sweep: moves that failed, tried again when their time has come."""
        now = self._clock.now()
        for symbol, at in list(self._book.breakeven_retry_at.items()):
            if now >= at and symbol not in self._book.moving:
                self._tasks.spawn(self.move_to_breakeven(symbol), "breakeven")

    async def earlier_parts(self, trade: ClosedTrade) -> tuple[Decimal, ...]:
        """The net PnL of the parts of ``trade``'s position booked before it (or beside it,
        once it is stored), in the order they were booked."""
        parts = await self._repo.signal_trades(trade.signal_id)
        return tuple(part.net_pnl for part in parts if part.part and part.id != trade.id)

    async def tick_size(self, symbol: str) -> Decimal | None:
        """The symbol's tick size, for display; the adapter caches instruments."""
        try:
            return (await self._exchange.instrument(symbol)).tick_size
        except Exception as exc:
            log.debug("no tick size for %s: %s", symbol, exc)
            return None

    async def check_profit_target(self) -> None:
        """Today's profit reached the target: said once a day (new entries are refused by
        ``rules.risk_reason``); open positions keep their SL/TP."""
        book = self._book
        target = book.limits.profit_target_usdt
        if target is None or not rules.profit_target_reached(book.day_pnl, book.limits):
            return
        day = book.day.date().isoformat()
        if await self._repo.get_setting(PROFIT_ANNOUNCED_KEY) == day:
            return
        reached = DailyProfitTargetReached(book.day_pnl, target, self._clock.now())
        notes = self._bus.notes_for(reached)
        await self._repo.set_setting(PROFIT_ANNOUNCED_KEY, day, notes=notes)
        await self._bus.publish(replace(reached, noted=bool(notes)))

    async def _check_daily_loss(self) -> None:
        book = self._book
        if not rules.daily_loss_reached(book.day_pnl, book.limits):
            return
        day = book.day.date().isoformat()
        if await self._repo.get_setting(LOSS_ANNOUNCED_KEY) != day:
            loss, limit = rules.daily_loss(book.day_pnl), book.limits.max_daily_loss_usdt
            at = self._clock.now()
            notes = self._bus.notes_for(DailyLossLimitReached(loss, limit, at))
            # Marked as announced only together with its chat note.
            await self._repo.set_setting(LOSS_ANNOUNCED_KEY, day, notes=notes)
            await self._bus.publish(DailyLossLimitReached(loss, limit, at, noted=bool(notes)))
        # The daily-loss stop: what is still open is closed too, so the day's loss is capped.
        for symbol in list(book.positions):
            self._tasks.spawn(
                self.close_quietly(symbol, CloseReason.DAILY_LOSS), "daily-loss-close"
            )
