"""The engine: the one place that sequences a signal's life, from first sight to closed trade.

seen → filtered / rejected / failed / opened → closed (SL, TP, TTL, manual, daily loss).
Commands from the bot arrive as method calls; what happened leaves as events on ``bus``.
Its parts, each named for what it is: the book (``book``), the signal intake (``intake``),
entries (``entries``), exits (``exits``), reconciliation with the venue (``reconciler``) and the
read side (``read_models``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from trader.balance_marks import BalanceMarks
from trader.book import Book
from trader.clock import Clock
from trader.coins import Coins
from trader.confirmation import Confirmations, Decision
from trader.drawdown import DrawdownGuard
from trader.entries import Entries
from trader.errors import ExchangeError
from trader.events import (
    ClockSkewed,
    EngineStarted,
    EngineStopped,
    EventBus,
    TradingToggled,
    VenueBanLifted,
    VenueBanned,
    VenueReachable,
    VenueUnreachable,
)
from trader.exchange.base import (
    Exchange,
    ExchangeEvent,
    PositionExited,
    PriceUpdated,
    StopLossMissing,
    TakeProfitCancelled,
)
from trader.exits import Exits
from trader.limit_settings import LimitSettings
from trader.models import ClosedTrade, CloseReason, InvalidSignal, Position, Signal
from trader.parts import Parts
from trader.pnl import Stats
from trader.ports import Repositories
from trader.read_models import Performance, ReadModels, Status
from trader.reconciler import Reconciler
from trader.rules import Limits
from trader.signal_intake import SignalIntake
from trader.signal_watch import SignalWatch
from trader.strategy import Strategy
from trader.tasks import Tasks, cancel_loop

log = logging.getLogger(__name__)

TRADING_ENABLED_KEY = "trading_enabled"
VENUE_CHECK_SECONDS = 60.0
STOP_GRACE = 10.0  # seconds that entries and exits in flight get to finish at shutdown


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
        self._sweeper: asyncio.Task[None] | None = None
        self._checker: asyncio.Task[None] | None = None
        self._started = False
        self._loaded = False  # the book read from the database (start's first step)
        self.book = Book(repo=repo, clock=clock, strategy=strategy)
        self._tasks = Tasks()
        parts = Parts(self.book, repo, exchange, clock, self.bus, strategy, self._tasks)
        self.exits = Exits(parts, on_unsure=self._reconcile_if_unsure)
        self.entries = Entries(parts, on_unsure=self._reconcile_if_unsure)
        self.reconciler = Reconciler(parts, exits=self.exits)
        self.read_models = ReadModels(parts, exits=self.exits)
        self.drawdown = DrawdownGuard(
            parts,
            read_models=self.read_models,
            stop_trading=self.stop_trading,
            close=self.exits.close_quietly,
        )
        self.bus.subscribe(self.drawdown.on_event)
        # The balance sizing reads; in live mode also the equity curve's point after a close.
        self.balances = BalanceMarks(parts, after=self.drawdown.check)
        self.bus.subscribe(self.balances.on_event)
        self.limit_settings = LimitSettings(repo=repo, strategy=strategy)
        self._limits_lock = asyncio.Lock()
        self.confirmations = Confirmations(repo=repo, clock=clock, bus=self.bus, strategy=strategy)
        self.coins = Coins(
            strategy=strategy, repo=repo, exchange=exchange, on_whitelisted=self._prepare_symbols
        )
        silence = strategy.signal_silence_minutes
        self.signal_watch = SignalWatch(self.bus, silence_minutes=silence, started=clock.now())
        self.intake = SignalIntake(
            parts,
            entries=self.entries,
            confirmations=self.confirmations,
            coins=self.coins,
            signal_watch=self.signal_watch,
        )

    @property
    def limits(self) -> Limits:
        return self.book.limits

    @property
    def trading_enabled(self) -> bool:
        return self.book.trading_enabled

    @property
    def loaded(self) -> bool:
        """The book (positions, switches, limits) read from the database: what /status
        shows is the bot's state, not the empty book it starts from."""
        return self._loaded

    @property
    def running(self) -> bool:
        """Started and not stopped: taking signals, watching positions."""
        return self._started

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Load state, take over open positions, resolve what a crash interrupted."""
        self.book.limits = await self.limit_settings.load()
        await self.coins.load()
        await self.confirmations.load()
        # Trading is off on the very first start; afterwards the trader's choice is remembered.
        self.book.trading_enabled = await self.repo.get_setting(TRADING_ENABLED_KEY) == "1"
        await self.signal_watch.load(self.repo)
        positions = await self.repo.open_positions()
        self.book.positions = {p.symbol: p for p in positions}
        await self.book.load_cooldowns()  # of the positions closed, not of these
        await self.drawdown.load()
        await self.book.refresh_day()
        self._loaded = True
        await self.exchange.start(self._on_exchange_event)
        await self.exchange.adopt(positions)
        await self.balances.refresh()
        await self.exchange.prepare(sorted(self.coins.lists.whitelist), self.limits.leverage)
        await self.reconcile("start-up", startup=True)
        for symbol in list(self.book.positions):  # a breakeven move a crash left undone
            move = self.exits.move_to_breakeven(symbol, ask_venue=True)
            self._tasks.spawn(move, "breakeven")
        await self._fail_undecided()
        self._sweeper = asyncio.create_task(self._sweep_ttl(), name="ttl-sweeper")
        if self.exchange.mode == "live":
            self._checker = asyncio.create_task(
                self.reconciler.check_every(self._venue_check_seconds), name="venue-checker"
            )
        self._started = True
        await self.bus.publish(
            EngineStarted(
                mode=self.exchange.mode,
                at=self.clock.now(),
                open_positions=len(self.book.positions),
                trading_enabled=self.trading_enabled,
                strategy=self.coins.strategy_in_force(),
            )
        )
        # The reports' stats count the whole history once, off the loop, now: the first
        # report is then as quick as the next.
        self._tasks.spawn(self.read_models.performance(), "count-closed-trades")
        # A position whose TTL passed while we were down is closed now.
        await self.expire_due()

    async def stop(self) -> None:
        """Stop taking signals and let entries in flight finish; positions keep their SL/TP."""
        self._tasks.stopping = True  # from here on no new entry or exit is started
        await cancel_loop(self._sweeper)
        await cancel_loop(self._checker)
        await self._tasks.stop(STOP_GRACE)
        await self.exchange.stop()
        if self._started:
            await self.bus.publish(EngineStopped(at=self.clock.now()))
        self._started = False

    # --- a signal's life -------------------------------------------------------------------

    async def handle_record(self, record: Signal | InvalidSignal) -> None:
        """First sight of a row: decide it, and store it once, with its first decision."""
        await self.intake.handle_record(record)

    async def record_backlog(self, records: Sequence[Signal | InvalidSignal]) -> Counter[str]:
        """Rows that were in the log before we followed it, decided in bulk."""
        return await self.intake.record_backlog(records)

    async def decide(
        self, ref: str, approve: bool, origin: tuple[int, int] | None = None
    ) -> Decision:
        """The trader's answer to a confirmation question; an approval runs the risk checks."""
        return await self.intake.decide(ref, approve, origin)

    async def set_confirm_mode(self, enabled: bool) -> None:
        await self.confirmations.set_enabled(enabled)

    def _on_exchange_event(self, event: ExchangeEvent) -> None:
        """Called on the loop by the adapter; the work runs as a tracked task."""
        spawn = self._tasks.spawn
        if isinstance(event, PriceUpdated):
            self.book.prices[event.ticker.symbol] = event.ticker
            position = self.book.positions.get(event.ticker.symbol)
            if position is None or not self.book.close_due(position):
                return
            spawn(self.exits.close_quietly(position.symbol, CloseReason.TTL), "ttl-close")
        elif isinstance(event, PositionExited):
            spawn(self.exits.venue_closed(event), f"exchange-closed-{event.symbol}")
        elif isinstance(event, StopLossMissing):
            spawn(self.reconciler.stop_loss_missing(event.symbol), f"stop-watch-{event.symbol}")
        elif isinstance(event, TakeProfitCancelled):
            check = self.reconciler.take_profit_cancelled(event.symbol, event.price)
            spawn(check, f"take-profits-{event.symbol}")
        elif isinstance(
            event, VenueBanned | VenueBanLifted | ClockSkewed | VenueUnreachable | VenueReachable
        ):
            spawn(self.bus.publish(event), type(event).__name__)
            if isinstance(event, VenueBanLifted):  # find what REST could not see meanwhile
                spawn(self.reconcile("Bybit's ban was lifted"), "reconcile")
        else:  # the venue's stream is back: what it missed is found by reconciling
            spawn(self.reconcile("the private stream reconnected"), "reconcile")

    async def expire_due(self) -> None:
        """Close every position whose TTL has passed."""
        await self.exits.expire_due()

    async def _sweep_ttl(self) -> None:
        # Tickers also check TTL as they arrive; this covers a symbol whose stream is quiet.
        while True:
            await asyncio.sleep(self._ttl_sweep_seconds)
            try:
                await self.expire_due()
                await self.confirmations.expire_due()
                await self.signal_watch.check(self.clock.now())
                await self.drawdown.flatten()  # a drawdown stop's close-out, until flat
                await self.exits.due_breakeven_moves()
            except Exception:
                log.exception("TTL sweep failed")

    async def reconcile(
        self, trigger: str, *, startup: bool = False, periodic: bool = False
    ) -> list[str]:
        """Compare the venue with the book, repair what differs and say it in chat."""
        return await self.reconciler.run(trigger, startup=startup, periodic=periodic)

    def _reconcile_if_unsure(self, trigger: str) -> None:
        self.reconciler.if_unsure(trigger)

    async def _fail_undecided(self) -> None:
        """Signals a crash left without an outcome (their orders were resolved above)."""
        now = self.clock.now()
        for stored in await self.repo.signals_without_outcome():
            if self.confirmations.is_pending(stored.id):
                continue  # still waiting for the trader's answer; it survives a restart
            await self.repo.set_outcome(stored.id, "failed:interrupted", now)

    # --- commands ----------------------------------------------------------------------------

    async def start_trading(self) -> None:
        await self.drawdown.resumed()  # after a drawdown stop: its peak counts from now
        await self._set_trading(True)

    async def stop_trading(self) -> None:
        """Stop taking new signals; open positions keep their exchange-side SL/TP."""
        await self._set_trading(False)

    async def _set_trading(self, enabled: bool) -> None:
        self.book.trading_enabled = enabled
        await self.repo.set_setting(TRADING_ENABLED_KEY, "1" if enabled else "0")
        await self.bus.publish(TradingToggled(enabled, self.clock.now()))

    async def close(self, symbol: str) -> ClosedTrade | None:
        """Close ``symbol``'s position now (reduce-only market). None if there is none."""
        return await self.exits.close(symbol.strip().upper(), CloseReason.MANUAL)

    async def close_all(self) -> list[ClosedTrade]:
        results = await asyncio.gather(
            *(self.exits.close(symbol, CloseReason.MANUAL) for symbol in list(self.book.positions)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ExchangeError):
                log.error("close all: a close failed", exc_info=result)
        return [r for r in results if isinstance(r, ClosedTrade)]

    def open_positions(self) -> list[Position]:
        return list(self.book.positions.values())

    async def set_limit(self, name: str, raw: str) -> tuple[Limits, Limits]:
        """Set one limit from chat: the limits before and after. ``ValueError`` with a clear
        message changes nothing. One change at a time: two commands close together would
        otherwise each lay their change over limits read before the other's write."""
        async with self._limits_lock:
            before = self.limits
            self.book.limits = await self.limit_settings.set(before, name, raw)
            await self._prepare_if_changed(before.leverage)
            after = self.limits
        # A guard set below where things stand acts now, not at the next close.
        if name == "max_drawdown":
            await self.drawdown.check()
        elif name == "profit_target":
            await self.exits.check_profit_target()
        return before, after

    async def reset_limit(self, name: str) -> tuple[Limits, Limits]:
        async with self._limits_lock:
            before = self.limits
            self.book.limits = await self.limit_settings.reset(name)
            await self._prepare_if_changed(before.leverage)
            return before, self.limits

    async def _prepare_if_changed(self, leverage_before: int) -> None:
        if self.limits.leverage != leverage_before:  # set on the venue now, not at an entry
            await self.exchange.prepare(sorted(self.coins.lists.whitelist), self.limits.leverage)

    def _prepare_symbols(self, symbols: list[str]) -> None:
        """Ready symbols newly whitelisted from chat on the venue, before their first signal."""
        self._tasks.spawn(self.exchange.prepare(symbols, self.limits.leverage), "prepare-coins")

    # --- the read side -----------------------------------------------------------------------

    async def status(self) -> Status:
        confirm, last = self.confirmations.enabled, self.signal_watch.last_at
        return await self.read_models.status(
            confirm_mode=confirm, last_signal_at=last, ask_venue=self._started
        )

    async def recent_trades(self, limit: int = 10) -> Sequence[ClosedTrade]:
        return await self.read_models.recent_trades(limit)

    async def stats(self) -> Stats:
        return await self.read_models.stats()

    async def performance(self) -> Performance:
        return await self.read_models.performance()

    def count_views(self, zone: ZoneInfo) -> None:
        """Count the closed trades for ``/profit``, ``/daily`` and ``/performance`` in the
        background (off the loop), so that the first of them answers at once."""
        self._tasks.spawn(self.read_models.count_views(zone), "count-trade-views")

    async def wait_idle(self) -> None:
        """Wait until every entry and exit in flight has finished (for shutdown and tests)."""
        await self._tasks.wait_idle()
