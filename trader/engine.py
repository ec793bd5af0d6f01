"""The engine: the one place that sequences a signal's life, from first sight to closed trade.

seen → filtered / rejected / failed / opened → closed (SL, TP, TTL, manual, daily loss).
Commands from the bot arrive as method calls; what happened leaves as events on ``bus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from trader import orders, reconcile, rules
from trader.clock import Clock, utc_day_start
from trader.confirmation import Confirmations, Decision, Verdict
from trader.errors import (
    ExchangeError,
    NoPosition,
    NotTradable,
    OrderRejected,
    OutcomeUnknown,
)
from trader.events import (
    ClockSkewed,
    DailyLossLimitReached,
    EngineStarted,
    EngineStopped,
    Event,
    EventBus,
    OrderFailed,
    PositionClosed,
    PositionOpened,
    PositionReduced,
    Reconciled,
    SignalSkipped,
    TradingToggled,
    VenueBanLifted,
    VenueBanned,
)
from trader.exchange.base import (
    Exchange,
    ExchangeEvent,
    PositionExited,
    PriceUpdated,
    StopLossMissing,
    VenuePosition,
)
from trader.models import (
    ClosedTrade,
    CloseReason,
    EntryOrder,
    ExitOrder,
    Fill,
    InvalidSignal,
    Position,
    Signal,
    Ticker,
)
from trader.pnl import (
    Stats,
    close_part,
    equity_curve,
    open_position,
    trade_stats,
    unrealised_pnl,
)
from trader.ports import FillAlreadyBooked, OrderRecord, OrderStatus, Repositories
from trader.rules import Limits, RiskState
from trader.settings import Strategy

log = logging.getLogger(__name__)

TRADING_ENABLED_KEY = "trading_enabled"
LIMIT_PREFIX = "limit."
LOSS_ANNOUNCED_KEY = "daily_loss_announced"
CLOSE_RETRY_DELAY = timedelta(seconds=30)
VENUE_CHECK_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class PositionView:
    """An open position with its unrealised PnL at the last known price."""

    position: Position
    price: Decimal | None
    unrealised_pnl: Decimal | None
    tick_size: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Status:
    mode: str
    trading_enabled: bool
    positions: list[PositionView]
    today_pnl: Decimal
    balance: Decimal | None  # None: the venue has not told us yet
    limits: Limits
    daily_loss_reached: bool
    confirm_mode: bool = False
    balance_stale: bool = False  # the venue did not answer: the last balance it told us


@dataclass(frozen=True, slots=True)
class Performance:
    stats: Stats
    curve: list[tuple[datetime, Decimal]]  # balance after each closed trade


class Engine:
    def __init__(
        self,
        *,
        strategy: Strategy,
        exchange: Exchange,
        repo: Repositories,
        clock: Clock,
        bus: EventBus | None = None,
        ttl_sweep_seconds: float = 1.0,
        venue_check_seconds: float = VENUE_CHECK_SECONDS,
    ) -> None:
        """``venue_check_seconds``: how often a live engine reconciles with the venue while
        all looks well (a push lost on a live connection is found within that time)."""
        self.strategy = strategy
        self.exchange = exchange
        self.repo = repo
        self.clock = clock
        self.bus = bus or EventBus()
        self._ttl_sweep_seconds = ttl_sweep_seconds
        self._venue_check_seconds = venue_check_seconds
        self._checker: asyncio.Task[None] | None = None
        self._last_check: tuple[str, ...] = ()  # what the last periodic check reported
        self.limits = Limits.from_strategy(strategy)
        self.trading_enabled = False
        self._positions: dict[str, Position] = {}
        self._in_flight: dict[str, str] = {}  # symbol → signal id of an entry being placed
        self._closing: set[str] = set()
        # After a failed automatic close, wait before the next try rather than every ticker.
        self._retry_close_at: dict[str, datetime] = {}
        self._prices: dict[str, Ticker] = {}
        self._balance: Decimal | None = None  # the last balance the venue told us
        self._day = utc_day_start(clock.now())
        self._day_pnl = Decimal(0)
        self._day_loaded = False
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = False
        self._reconciling = asyncio.Lock()
        self._recheck_orders = False  # an order's outcome is unknown: reconcile once free
        # Symbol → orderLinkId of an entry whose outcome is unknown: the symbol stays taken
        # (and counts against max_positions) until reconciliation says what became of it.
        self._unresolved: dict[str, str] = {}
        self.confirmations = Confirmations(repo=repo, clock=clock, bus=self.bus, strategy=strategy)

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Load state, take over open positions, resolve what a crash interrupted."""
        await self._load_limits()
        await self.confirmations.load()
        # Trading is off on the very first start; afterwards the trader's choice is remembered.
        self.trading_enabled = await self.repo.get_setting(TRADING_ENABLED_KEY) == "1"
        positions = await self.repo.open_positions()
        self._positions = {p.symbol: p for p in positions}
        await self._refresh_day()
        await self.exchange.start(self._on_exchange_event)
        await self.exchange.adopt(positions)
        await self.exchange.prepare(sorted(self.strategy.top_coins), self.limits.leverage)
        await self.reconcile("start-up", startup=True)
        await self._fail_undecided()
        self._sweeper = asyncio.create_task(self._sweep_ttl(), name="ttl-sweeper")
        if self.exchange.mode == "live":
            self._checker = asyncio.create_task(self._check_venue(), name="venue-checker")
        self._started = True
        await self._publish(
            EngineStarted(
                mode=self.exchange.mode,
                at=self.clock.now(),
                open_positions=len(self._positions),
                trading_enabled=self.trading_enabled,
            )
        )
        # A position whose TTL passed while we were down is closed now.
        await self.expire_due()

    async def stop(self) -> None:
        """Stop taking signals and let entries in flight finish; positions keep their SL/TP."""
        self._stopping = True  # from here on no new entry or exit is started
        for loop_task in (self._sweeper, self._checker):
            if loop_task is not None:
                loop_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop_task
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        leftovers = list(self._tasks)
        for task in leftovers:  # never let work outlive the database it writes to
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        await self.exchange.stop()
        if self._started:
            await self._publish(EngineStopped(at=self.clock.now()))
        self._started = False

    # --- a signal's life -------------------------------------------------------------------

    async def handle_record(self, record: Signal | InvalidSignal) -> None:
        """First sight of a row: record it once, then filter, check risk and enter.

        The entry itself runs as a task so a slow venue never holds up the next signal;
        the risk check and the slot it reserves happen here, with no await in between.
        """
        now = self.clock.now()
        if not await self.repo.record_signal(record, now):
            return  # acted on already (this run or a previous one)
        if isinstance(record, InvalidSignal):
            log.warning("invalid signal row %s: %s", record.id, record.reason)
            await self._publish(SignalSkipped(record.id, "", f"invalid:{record.reason}", now))
            return
        signal = record
        reason = rules.screen(
            signal,
            now=now,
            strategy=self.strategy,
            limits=self.limits,
            open_symbols=self._held_symbols(),
        )
        if reason is not None:
            await self._skip(signal, f"filtered:{reason}")
            return
        await self._refresh_day()
        margin = rules.entry_margin(self.strategy, self.limits)
        reason = rules.risk_reason(margin, self._risk_state(), self.limits)
        if reason is not None:
            await self._skip(signal, f"rejected:{reason}")
            return
        if self.confirmations.enabled:
            # Risk is checked again at the press; asking about a trade that cannot be made
            # now would only be noise.
            await self.confirmations.ask(signal, margin, self.limits.leverage)
            return
        self._in_flight[signal.symbol] = signal.id  # the slot is taken before any await
        self._spawn(self._enter(signal, margin), f"enter-{signal.symbol}")

    async def decide(
        self, ref: str, approve: bool, origin: tuple[int, int] | None = None
    ) -> Decision:
        """The trader's answer to a confirmation question (``ref``), asked in the message
        ``origin`` (chat id, message id). An approval runs the risk checks now."""
        if self._stopping:
            return Decision(Verdict.UNAVAILABLE)
        decision, signal = await self.confirmations.resolve(ref, approve, origin)
        if signal is None:
            return decision
        await self._refresh_day()
        margin = rules.entry_margin(self.strategy, self.limits)
        reason = "already_open" if signal.symbol in self._held_symbols() else None
        reason = reason or rules.risk_reason(margin, self._risk_state(), self.limits)
        if reason is None and self._stopping:
            reason = "shutting_down"
        if reason is not None:
            await self.confirmations.announce(signal.id, signal, "approved", f"rejected:{reason}")
            await self._skip(signal, f"rejected:{reason}")
            return Decision(Verdict.REJECTED, signal.symbol, reason)
        self._in_flight[signal.symbol] = signal.id  # no await since the check above
        self._spawn(self._enter(signal, margin), f"enter-{signal.symbol}")
        await self.confirmations.announce(signal.id, signal, "approved")
        return decision

    def _held_symbols(self) -> set[str]:
        """Symbols with a position, an entry in flight, or an entry whose outcome is not known
        yet: one per symbol (one-way mode)."""
        return self._positions.keys() | self._in_flight.keys() | self._unresolved.keys()

    async def set_confirm_mode(self, enabled: bool) -> None:
        await self.confirmations.set_enabled(enabled)

    def _risk_state(self, *, own_slot: bool = False) -> RiskState:
        """Risk now; ``own_slot``: for an entry in flight, whose own slot is not counted."""
        return RiskState(
            trading_enabled=self.trading_enabled,
            open_positions=len(self._held_symbols()) - int(own_slot),
            daily_net_pnl=self._day_pnl,
        )

    async def _enter(self, signal: Signal, margin: Decimal) -> None:
        try:
            await self._place_entry(signal, margin)
        finally:
            # Released only now, when the position is in the book or the entry has failed:
            # until then the slot counts against the limits.
            self._in_flight.pop(signal.symbol, None)
            self._reconcile_if_unsure("an order without an answer")

    async def _place_entry(self, signal: Signal, margin: Decimal) -> None:
        side = signal.side
        assert side is not None  # screened
        leverage = self.limits.leverage
        link_id = orders.entry_link_id(signal.id)
        try:
            instrument = await self.exchange.instrument(signal.symbol)  # loaded at start-up
            if not instrument.is_usdt_perpetual:  # a USDC perpetual or a dated future
                await self._skip(signal, "rejected:not_usdt_perpetual")
                return
            # Leverage, position mode and price stream: ready since start-up for a
            # whitelisted symbol, so that the order is the first call to the venue.
            ticker = await self.exchange.prepare_entry(signal.symbol, leverage)
            # Until the stream's first update for the symbol, /status values it at this one.
            self._prices.setdefault(signal.symbol, ticker)
            sizing = rules.size_order(margin, leverage, ticker.fill_price(side), instrument)
            if isinstance(sizing, str):
                await self._skip(signal, f"rejected:{sizing}")
                return
            stop, take = rules.protective_prices(
                side,
                sizing.price,
                sl_pct=self.strategy.sl_pct,
                tp_pct=self.strategy.tp_pct,
                leverage=leverage,
                tick=instrument.tick_size,
            )
        except NotTradable as exc:
            log.warning("signal %s rejected: %s", signal.id, exc)
            await self._skip(signal, f"rejected:{exc.reason}")
            return
        except Exception as exc:  # never let one signal kill the engine
            await self._entry_failed(signal, link_id, exc)
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
        async with self._lock(signal.symbol):
            # Checked again at the last moment: trading may have been stopped, or the daily
            # loss limit reached, while this entry awaited the venue.
            await self._refresh_day()
            late = rules.risk_reason(margin, self._risk_state(own_slot=True), self.limits)
            if late is not None:
                await self._skip(signal, f"rejected:{late}")
                return
            # Recorded before it is sent: after a crash the order is looked up, not re-sent.
            await self.repo.add_order(
                OrderRecord(
                    link_id=link_id,
                    signal_id=signal.id,
                    symbol=signal.symbol,
                    side=side,
                    qty=sizing.qty,
                    reduce_only=False,
                    status=OrderStatus.PENDING,
                    created_at=self.clock.now(),
                )
            )
            try:
                fill = await self.exchange.open(order)
            except Exception as exc:
                await self._entry_failed(signal, link_id, exc)
                return
            position = open_position(
                signal.id,
                fill,
                leverage=leverage,
                stop_loss=stop,
                take_profit=take,
                expires_at=signal.timestamp + rules.signal_ttl(signal, self.strategy),
            )
            # Its chat notes are booked with the entry: a crash keeps both or neither.
            short = order.qty if fill.qty < order.qty else None
            opened = PositionOpened(
                position, self.clock.now(), instrument.tick_size, ordered_qty=short
            )
            notes = self.bus.notes_for(opened)
            try:
                stored = await self.repo.record_entry(position, fill, opened.at, notes=notes)
            except Exception as exc:
                await self._abandon_entry(signal, position, exc)
                return
            self._positions[signal.symbol] = stored
        await self._publish(replace(opened, position=stored, noted=bool(notes)))

    async def _abandon_entry(self, signal: Signal, position: Position, exc: Exception) -> None:
        """A fill the database would not take: a position we could not track is closed at
        once rather than left on the venue unmanaged."""
        log.critical("could not store the %s position; closing it", position.symbol, exc_info=exc)
        reason = f"could not store the position ({_short(str(exc), 80)}); closed it at market"
        try:
            await self.exchange.close(
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
            await self.repo.set_outcome(signal.id, f"failed:{_short(reason)}", self.clock.now())
        await self._publish(OrderFailed(signal.id, signal.symbol, reason, self.clock.now()))

    async def _entry_failed(self, signal: Signal, link_id: str, exc: Exception) -> None:
        if not isinstance(exc, ExchangeError):
            log.error("entry for %s failed", signal.symbol, exc_info=exc)
        reason = _short(str(exc) or type(exc).__name__)
        status = _order_status(exc)
        if await self.repo.get_order(link_id) is not None:
            await self.repo.update_order(link_id, status, error=reason)
        now = self.clock.now()
        await self.repo.set_outcome(signal.id, f"failed:{reason}", now)
        await self._publish(OrderFailed(signal.id, signal.symbol, reason, now))
        if status is OrderStatus.UNKNOWN:  # it may fill yet: reconciling will find it
            self._unresolved[signal.symbol] = link_id
            self._recheck_orders = True

    async def _skip(self, signal: Signal, outcome: str) -> None:
        now = self.clock.now()
        await self.repo.set_outcome(signal.id, outcome, now)
        await self._publish(SignalSkipped(signal.id, signal.symbol, outcome, now))

    # --- exits -----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run engine work in the background, tracked (``wait_idle``, ``stop``) and never
        failing silently."""
        if self._stopping:
            coro.close()
            log.warning("not starting %s: the engine is stopping", name)
            return
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    def _lock(self, symbol: str) -> asyncio.Lock:
        """One lock per symbol: an entry being stored and an exit never interleave."""
        return self._locks.setdefault(symbol, asyncio.Lock())

    def _on_exchange_event(self, event: ExchangeEvent) -> None:
        """Called on the loop by the adapter; the work runs as a tracked task."""
        if isinstance(event, PriceUpdated):
            self._prices[event.ticker.symbol] = event.ticker
            position = self._positions.get(event.ticker.symbol)
            if position is None or not self._close_due(position):
                return
            self._spawn(self._close_quietly(position.symbol, CloseReason.TTL), "ttl-close")
        elif isinstance(event, PositionExited):
            self._spawn(self._exchange_closed(event), f"exchange-closed-{event.symbol}")
        elif isinstance(event, StopLossMissing):
            self._spawn(self._stop_loss_missing(event.symbol), f"stop-watch-{event.symbol}")
        elif isinstance(event, VenueBanned | VenueBanLifted | ClockSkewed):
            self._spawn(self._publish(event), type(event).__name__)
            if isinstance(event, VenueBanLifted):  # find what REST could not see meanwhile
                self._spawn(self.reconcile("Bybit's ban was lifted"), "reconcile")
        else:  # the venue's stream is back: what it missed is found by reconciling
            self._spawn(self.reconcile("the private stream reconnected"), "reconcile")

    async def _exchange_closed(self, event: PositionExited) -> None:
        async with self._lock(event.symbol):
            position = self._positions.get(event.symbol)
            if position is None:
                log.warning("exchange closed %s, which the engine does not hold", event.symbol)
                return
            if event.fill.at < position.opened_at:
                log.warning("ignoring a close of %s older than its position", event.symbol)
                return
            await self._record_close(position, event.fill, event.reason, closes_all=event.flat)

    async def _close_symbol(self, symbol: str, reason: CloseReason) -> ClosedTrade | None:
        """Close one position with a reduce-only market order; None if it is already gone."""
        if symbol in self._closing:
            return None
        self._closing.add(symbol)
        try:
            async with self._lock(symbol):
                position = self._positions.get(symbol)
                if position is None:
                    return None
                order = await self._exit_order(position, reason)
                try:
                    fill = await self.exchange.close(order)
                except NoPosition as exc:
                    # An SL/TP trigger got there first; its close is recorded once we let go.
                    log.info("%s was already closed on the venue", symbol)
                    await self._order_done(order.link_id, OrderStatus.REJECTED, str(exc))
                    return None
                except ExchangeError as exc:
                    self._retry_close_at[symbol] = self.clock.now() + CLOSE_RETRY_DELAY
                    reason_text = _short(str(exc))
                    await self._order_done(order.link_id, _order_status(exc), reason_text)
                    self._recheck_orders |= isinstance(exc, OutcomeUnknown)
                    log.error("closing %s failed: %s", symbol, reason_text)
                    await self._publish(
                        OrderFailed(position.signal_id, symbol, reason_text, self.clock.now())
                    )
                    raise
                await self.repo.update_order(order.link_id, OrderStatus.FILLED)
                # A close that filled in part books that part; the rest stays open.
                return await self._record_close(position, fill, reason)
        finally:
            self._closing.discard(symbol)
            self._reconcile_if_unsure("a close without an answer")

    async def _exit_order(self, position: Position, reason: CloseReason) -> ExitOrder:
        """The closing order of ``position``, recorded before it is sent. Each attempt has
        its own ``orderLinkId`` (Bybit refuses a link id it has seen)."""
        attempt = await self.repo.count_exit_orders(position.signal_id)
        order = ExitOrder(
            link_id=orders.exit_link_id(position.signal_id, attempt),
            symbol=position.symbol,
            side=position.side.opposite,
            qty=position.qty,
            reason=reason,
        )
        await self.repo.add_order(
            OrderRecord(
                link_id=order.link_id,
                signal_id=position.signal_id,
                symbol=order.symbol,
                side=order.side,
                qty=order.qty,
                reduce_only=True,
                status=OrderStatus.PENDING,
                created_at=self.clock.now(),
            )
        )
        return order

    async def _order_done(self, link_id: str, status: OrderStatus, error: str) -> None:
        with contextlib.suppress(Exception):  # the order's record must not mask its outcome
            await self.repo.update_order(link_id, status, error=error)

    async def _record_close(
        self, position: Position, fill: Fill, reason: CloseReason, *, closes_all: bool = False
    ) -> ClosedTrade | None:
        """Book an exit fill: a fill for less than the position books the part it took and
        the rest stays open and managed, unless ``closes_all`` (the venue is flat after it).
        None when the fill was booked before (a push and a REST read of one exit)."""
        assert position.id is not None
        trade, rest = close_part(position, fill, reason, closes_all=closes_all)
        tick = await self._tick_size(position.symbol)
        # Its chat notes are booked with the exit: a crash keeps both or neither.
        notes = self.bus.notes_for(
            PositionClosed(trade, tick) if rest is None else PositionReduced(trade, rest, tick)
        )
        try:
            if rest is None:
                trade = await self.repo.close_position(position.id, trade, fill, notes=notes)
            else:
                trade = await self.repo.reduce_position(rest, trade, fill, notes=notes)
        except FillAlreadyBooked:
            log.info("%s: exit fill %s was booked already", position.symbol, fill.exec_id)
            return None
        if rest is None:
            self._positions.pop(position.symbol, None)
            self._retry_close_at.pop(position.symbol, None)
        else:
            self._positions[position.symbol] = rest
        await self._refresh_day(force=True)
        if rest is None:
            await self._publish(PositionClosed(trade, tick, noted=bool(notes)))
        else:
            log.warning(
                "%s: %s of %s closed, %s stays open",
                position.symbol,
                fill.qty,
                position.qty,
                rest.qty,
            )
            await self._publish(PositionReduced(trade, rest, tick, noted=bool(notes)))
        await self._check_daily_loss()
        return trade

    async def _tick_size(self, symbol: str) -> Decimal | None:
        """The symbol's tick size, for display; the adapter caches instruments."""
        try:
            return (await self.exchange.instrument(symbol)).tick_size
        except Exception as exc:
            log.debug("no tick size for %s: %s", symbol, exc)
            return None

    async def _check_daily_loss(self) -> None:
        if not rules.daily_loss_reached(self._day_pnl, self.limits):
            return
        day = self._day.date().isoformat()
        if await self.repo.get_setting(LOSS_ANNOUNCED_KEY) != day:
            loss, limit = rules.daily_loss(self._day_pnl), self.limits.max_daily_loss_usdt
            at = self.clock.now()
            notes = self.bus.notes_for(DailyLossLimitReached(loss, limit, at))
            # Marked as announced only together with its chat note.
            await self.repo.set_setting(LOSS_ANNOUNCED_KEY, day, notes=notes)
            await self._publish(DailyLossLimitReached(loss, limit, at, noted=bool(notes)))
        # The daily-loss stop: what is still open is closed too, so the day's loss is capped.
        for symbol in list(self._positions):
            self._spawn(self._close_quietly(symbol, CloseReason.DAILY_LOSS), "daily-loss-close")

    async def _close_quietly(self, symbol: str, reason: CloseReason) -> None:
        with contextlib.suppress(ExchangeError):
            await self._close_symbol(symbol, reason)

    async def expire_due(self) -> None:
        """Close every position whose TTL has passed."""
        due = [p.symbol for p in self._positions.values() if self._close_due(p)]
        for symbol in due:
            await self._close_quietly(symbol, CloseReason.TTL)

    def _close_due(self, position: Position) -> bool:
        now = self.clock.now()
        retry_at = self._retry_close_at.get(position.symbol)
        return now >= position.expires_at and (retry_at is None or now >= retry_at)

    async def _sweep_ttl(self) -> None:
        # Tickers also check TTL as they arrive; this covers a symbol whose stream is quiet.
        while True:
            await asyncio.sleep(self._ttl_sweep_seconds)
            try:
                await self.expire_due()
                await self.confirmations.expire_due()
            except Exception:
                log.exception("TTL sweep failed")

    # --- reconciliation --------------------------------------------------------------------

    async def _check_venue(self) -> None:
        """Reconcile every ``venue_check_seconds`` even while the stream looks healthy: a
        push lost on a live connection, or a stop-loss removed by hand, is found within that
        time. A finding already reported by the last check is not repeated, except alarms
        (a position without a stop-loss), which are said until fixed."""
        while True:
            await asyncio.sleep(self._venue_check_seconds)
            try:
                await self.reconcile("periodic check", periodic=True)
            except Exception:
                log.exception("periodic check against the venue failed")

    async def reconcile(
        self, trigger: str, *, startup: bool = False, periodic: bool = False
    ) -> list[str]:
        """Compare the venue's positions and orders with the database, repair what differs,
        and report it in chat (``Reconciled``). At ``startup`` every order a crash left
        pending is looked up; later, only those whose outcome was unknown."""
        async with self._reconciling:
            try:
                venue = {p.symbol: p for p in await self.exchange.positions()}
            except ExchangeError as exc:
                log.error("reconciling (%s) failed: %s", trigger, exc)
                if startup:  # looked up at the next reconciliation instead
                    for order in await self.repo.orders_with_status(OrderStatus.PENDING):
                        await self.repo.update_order(order.link_id, OrderStatus.UNKNOWN)
                        if not order.reduce_only:
                            self._unresolved.setdefault(order.symbol, order.link_id)
                finding = reconcile.said_unreachable(_short(str(exc), 120))
                if periodic:  # said once while it lasts, not every minute
                    if self._last_check == (finding,):
                        return []
                    self._last_check = (finding,)
                await self._publish(Reconciled(trigger, (finding,), self.clock.now()))
                return [finding]
            findings = await self._resolve_orders(venue, startup=startup)
            found = reconcile.Diff()
            try:  # again: the lookups took time, and closes may have happened meanwhile
                venue = {p.symbol: p for p in await self.exchange.positions()}
                found = reconcile.diff(self._positions, venue, self._busy())
            except ExchangeError as exc:
                log.error("reconciling (%s) failed: %s", trigger, exc)
                findings.append(reconcile.said_unreachable(_short(str(exc), 120)))
            findings += await self._guard_stops(venue)  # those adopted below are said so
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
                await self._publish(Reconciled(trigger, tuple(findings), self.clock.now()))
            else:
                log.info("reconciled (%s): the venue agrees with the database", trigger)
            return findings

    def _reconcile_if_unsure(self, trigger: str) -> None:
        """Once an order whose outcome is unknown has let go of its symbol, reconcile."""
        if self._recheck_orders:
            self._recheck_orders = False
            self._spawn(self.reconcile(trigger), "reconcile")

    def _busy(self) -> set[str]:
        """Symbols with an order in flight: left alone until it has finished."""
        return self._in_flight.keys() | self._closing

    async def _resolve_orders(self, venue: dict[str, VenuePosition], *, startup: bool) -> list[str]:
        """Orders a crash or a lost answer left undecided, looked up by ``orderLinkId``."""
        statuses = (OrderStatus.PENDING, OrderStatus.UNKNOWN) if startup else (OrderStatus.UNKNOWN,)
        held = {p.link_id for p in self._positions.values()}
        findings: list[str] = []
        for order in await self.repo.orders_with_status(*statuses):
            if order.link_id in held:
                await self.repo.update_order(order.link_id, OrderStatus.FILLED)
                continue
            if order.symbol in self._busy():
                continue
            try:
                findings.append(await self._resolve_order(order, venue))
            except Exception as exc:  # one order must not stop the others being checked
                log.exception("resolving order %s failed", order.link_id)
                await self.repo.update_order(order.link_id, OrderStatus.UNKNOWN, error=str(exc))
                findings.append(reconcile.said_unchecked(order.symbol, order.link_id, str(exc)))
        for order in await self.repo.orders_with_status(OrderStatus.UNKNOWN):
            if not order.reduce_only:  # still unknown: its symbol stays taken
                self._unresolved.setdefault(order.symbol, order.link_id)
        return findings

    async def _resolve_order(self, order: OrderRecord, venue: dict[str, VenuePosition]) -> str:
        fill = await self.exchange.find_order(order.link_id)
        if self._unresolved.get(order.symbol) == order.link_id:
            del self._unresolved[order.symbol]
        if fill is None:
            await self.repo.update_order(order.link_id, OrderStatus.FAILED, error="interrupted")
            if self.exchange.mode == "live":
                return reconcile.said_never_placed(order.symbol, order.link_id)
            return ""
        if order.reduce_only:  # an exit that went through: the position diff closes it
            await self.repo.update_order(order.link_id, OrderStatus.FILLED)
            return ""
        return await self._recover_entry(order.signal_id, fill, venue)

    async def _recover_entry(
        self, signal_id: str, fill: Fill, venue: dict[str, VenuePosition]
    ) -> str:
        """An entry the venue filled while the bot lost track of it: recorded now."""
        async with self._lock(fill.symbol):
            held = self._positions.get(fill.symbol)
            if held is not None:  # adopted meanwhile as an unknown position: keep that one
                await self.repo.update_order(fill.link_id, OrderStatus.FILLED)
                return (
                    f"{fill.symbol}: entry {fill.link_id} was filled on Bybit; the position "
                    f"is already tracked (as {held.signal_id})"
                )
            signal = await self.repo.load_signal(signal_id)
            instrument = await self.exchange.instrument(fill.symbol)
            position = reconcile.recovered_entry(
                signal_id,
                fill,
                signal=signal,
                venue=venue.get(fill.symbol),
                strategy=self.strategy,
                limits=self.limits,
                tick=instrument.tick_size,
            )
            opened = PositionOpened(position, self.clock.now(), instrument.tick_size)
            notes = self.bus.notes_for(opened)  # booked with the entry
            stored = await self.repo.record_entry(position, fill, opened.at, notes=notes)
            self._positions[stored.symbol] = stored
            await self.exchange.adopt([stored])
        await self._publish(PositionOpened(stored, opened.at, opened.tick_size, noted=bool(notes)))
        return reconcile.said_recovered(stored)

    async def _settle_vanished(self, position: Position) -> str:
        """A recorded position the venue no longer holds: closed there, unseen by us."""
        async with self._lock(position.symbol):
            if self._positions.get(position.symbol) is not position:
                return ""  # settled meanwhile (its close was reported after all)
            try:
                exits = await self.exchange.exits_since(position.symbol, position.opened_at)
            except ExchangeError as exc:
                log.warning("looking up the close of %s failed: %s", position.symbol, exc)
                exits = []
            if not exits:
                return reconcile.said_missing(position)
            trades: list[ClosedTrade] = []
            for number, (fill, reason) in enumerate(exits, start=1):
                held = self._positions.get(position.symbol)
                if held is None:
                    break
                # The venue is flat: its last exit closes whatever is still recorded.
                booked = await self._record_close(
                    held, fill, reason, closes_all=number == len(exits)
                )
                trades += [booked] if booked is not None else []
            if position.symbol in self._positions:
                return reconcile.said_missing(self._positions[position.symbol])
        return reconcile.said_closed(trades)

    async def _settle_shrunk(self, position: Position, found: VenuePosition) -> str:
        """A position the venue holds less of than recorded: the exits that took the rest
        (a partial liquidation or auto-deleveraging whose push was lost) are booked."""
        if found.side is position.side and found.qty < position.qty:
            async with self._lock(position.symbol):
                try:
                    exits = await self.exchange.exits_since(position.symbol, position.opened_at)
                except ExchangeError as exc:
                    log.warning("looking up the exits of %s failed: %s", position.symbol, exc)
                    exits = []
                trades: list[ClosedTrade] = []
                for fill, reason in exits:
                    held = self._positions.get(position.symbol)
                    if held is None or held.qty <= found.qty:
                        break
                    booked = await self._record_close(held, fill, reason)
                    trades += [booked] if booked is not None else []
                held = self._positions.get(position.symbol)
            if held is not None and held.qty == found.qty:
                return reconcile.said_shrunk(held, trades)
            position = held or position
        return reconcile.said_mismatched(position, found)

    async def _guard_stops(self, venue: dict[str, VenuePosition]) -> list[str]:
        """The stop watchdog: every position we manage has its stop-loss on the venue; one
        found without it gets it back at the recorded level, or an alarm."""
        findings = []
        for symbol, position in list(self._positions.items()):
            found = venue.get(symbol)
            if symbol in self._busy() or found is None or found.stop_loss is not None:
                continue
            findings.append(await self._restore_stop(position))
        return findings

    async def _restore_stop(self, position: Position) -> str:
        if position.stop_loss <= 0:
            return reconcile.said_no_stop(position)
        try:
            await self.exchange.set_stop_loss(position.symbol, position.stop_loss)
        except ExchangeError as exc:
            log.error("%s has no stop-loss and restoring it failed: %s", position.symbol, exc)
            return reconcile.said_stop_not_restored(position, _short(str(exc), 120))
        log.warning("%s had no stop-loss on the venue; restored", position.symbol)
        return reconcile.said_stop_restored(position)

    async def _stop_loss_missing(self, symbol: str) -> None:
        """The venue pushed a position of ours without a stop-loss: checked by REST (a push
        can be a passing state) and restored at once, not at the next periodic check."""
        async with self._reconciling:
            if symbol not in self._positions or symbol in self._busy():
                return
            try:
                venue = {p.symbol: p for p in await self.exchange.positions()}
            except ExchangeError as exc:
                log.warning("checking the stop-loss of %s failed: %s", symbol, exc)
                return
            findings = await self._guard_stops({symbol: venue[symbol]} if symbol in venue else {})
        if findings:
            await self._publish(
                Reconciled("a stop-loss went missing", tuple(findings), self.clock.now())
            )

    async def _adopt_unknown(self, found: VenuePosition) -> str:
        """A venue position the bot never recorded: taken over so that it is tracked."""
        async with self._lock(found.symbol):
            if found.symbol in self._positions or found.side is None:
                return ""
            # Asked again under the lock: a close recorded since the snapshot must not come
            # back as an "unknown" position.
            now_there = {p.symbol for p in await self.exchange.positions()}
            if found.symbol not in now_there or found.symbol in self._busy():
                return ""
            stored = await self.repo.add_position(reconcile.adopted(found, self.clock.now()))
            self._positions[stored.symbol] = stored
            await self.exchange.adopt([stored])
        return reconcile.said_adopted(stored)

    async def _fail_undecided(self) -> None:
        """Signals a crash left without an outcome (their orders were resolved above)."""
        now = self.clock.now()
        for stored in await self.repo.signals_without_outcome():
            if self.confirmations.is_pending(stored.id):
                continue  # still waiting for the trader's answer; it survives a restart
            await self.repo.set_outcome(stored.id, "failed:interrupted", now)

    # --- the UTC day -------------------------------------------------------------------------

    async def _refresh_day(self, *, force: bool = False) -> None:
        """Today's realised PnL, read from the stored trades when the UTC day changes or a
        trade closes: derived, never accumulated, so it cannot be counted twice."""
        today = utc_day_start(self.clock.now())
        if today == self._day and self._day_loaded and not force:
            return
        trades = await self.repo.trades_closed_since(today)
        self._day = today
        self._day_pnl = sum((t.net_pnl for t in trades), Decimal(0))
        self._day_loaded = True

    # --- commands ----------------------------------------------------------------------------

    async def start_trading(self) -> None:
        await self._set_trading(True)

    async def stop_trading(self) -> None:
        """Stop taking new signals; open positions keep their exchange-side SL/TP."""
        await self._set_trading(False)

    async def _set_trading(self, enabled: bool) -> None:
        self.trading_enabled = enabled
        await self.repo.set_setting(TRADING_ENABLED_KEY, "1" if enabled else "0")
        await self._publish(TradingToggled(enabled, self.clock.now()))

    async def close(self, symbol: str) -> ClosedTrade | None:
        """Close ``symbol``'s position now (reduce-only market). None if there is none."""
        return await self._close_symbol(symbol.strip().upper(), CloseReason.MANUAL)

    async def close_all(self) -> list[ClosedTrade]:
        results = await asyncio.gather(
            *(self._close_symbol(symbol, CloseReason.MANUAL) for symbol in list(self._positions)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ExchangeError):
                log.error("close all: a close failed", exc_info=result)
        return [r for r in results if isinstance(r, ClosedTrade)]

    def open_positions(self) -> list[Position]:
        return list(self._positions.values())

    async def set_limit(self, name: str, raw: str) -> Limits:
        """Set one limit from chat; ``ValueError`` with a clear message changes nothing."""
        value = rules.parse_limit(name, raw)
        await self.repo.set_setting(LIMIT_PREFIX + name, str(value))
        before = self.limits.leverage
        self.limits = self.limits.with_overrides({name: str(value)})
        if self.limits.leverage != before:  # set on the venue now, not at the next entry
            await self.exchange.prepare(sorted(self.strategy.top_coins), self.limits.leverage)
        return self.limits

    async def reset_limit(self, name: str) -> Limits:
        rules.require_limit_name(name)
        await self.repo.delete_setting(LIMIT_PREFIX + name)
        await self._load_limits()
        return self.limits

    async def _load_limits(self) -> None:
        """The strategy file's limits with the ones changed from chat laid over them."""
        overrides = await self.repo.settings_with_prefix(LIMIT_PREFIX)
        self.limits = Limits.from_strategy(self.strategy).with_overrides(
            {key.removeprefix(LIMIT_PREFIX): value for key, value in overrides.items()}
        )

    async def status(self) -> Status:
        """What /status shows; it answers while the venue does not (a ban, an outage), with
        the last balance it told us, marked as such."""
        await self._refresh_day()
        stale = False
        balance: Decimal | None
        try:
            self._balance = balance = await self.exchange.balance()
        except ExchangeError as exc:
            log.warning("balance unavailable for /status: %s", exc)
            balance, stale = self._balance, True
        views = []
        for position in self._positions.values():
            ticker = self._prices.get(position.symbol)
            price = ticker.last if ticker else None
            upnl = (
                unrealised_pnl(position, price, self.strategy.fee_rate)
                if price is not None
                else None
            )
            tick = await self._tick_size(position.symbol)
            views.append(PositionView(position, price, upnl, tick))
        return Status(
            mode=self.exchange.mode,
            trading_enabled=self.trading_enabled,
            positions=views,
            today_pnl=self._day_pnl,
            balance=balance,
            balance_stale=stale,
            limits=self.limits,
            daily_loss_reached=rules.daily_loss_reached(self._day_pnl, self.limits),
            confirm_mode=self.confirmations.enabled,
        )

    async def recent_trades(self, limit: int = 10) -> Sequence[ClosedTrade]:
        return await self.repo.recent_trades(limit)

    async def stats(self) -> Stats:
        return (await self.performance()).stats

    async def performance(self) -> Performance:
        """Stats and the equity curve of every closed trade (one read of the trades)."""
        trades = await self.repo.all_trades()
        start = self.strategy.paper_balance_usdt
        return Performance(trade_stats(trades, start), equity_curve(trades, start))

    # --- plumbing ----------------------------------------------------------------------------

    async def _publish(self, event: Event) -> None:
        await self.bus.publish(event)

    async def wait_idle(self) -> None:
        """Wait until every entry and exit in flight has finished (for shutdown and tests)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))


def _order_status(exc: Exception) -> OrderStatus:
    """How a failed order is recorded: refused, unknown (to be looked up), or failed."""
    if isinstance(exc, OrderRejected):
        return OrderStatus.REJECTED
    if isinstance(exc, OutcomeUnknown):
        return OrderStatus.UNKNOWN
    return OrderStatus.FAILED


def _short(text: str, limit: int = 200) -> str:
    """An error message fit for an outcome column and a chat line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
