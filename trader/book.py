"""The book: the positions we hold, the slots entries in flight take, today's realised PnL and
the limits in force; what risk reads at the moment of each entry. One per engine.

Its state changes only on the event loop; a symbol's lock keeps an entry being stored and an
exit of the same symbol from interleaving.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal

from trader import cooldowns
from trader.clock import Clock, utc_day_start
from trader.cooldowns import Cooldowns
from trader.models import Position, Ticker
from trader.ports import TradeRepository
from trader.rules import Limits, RiskState
from trader.strategy import Strategy


class Book:
    """Positions by symbol (one-way mode: one each), slots, prices, today's PnL, limits."""

    def __init__(self, *, repo: TradeRepository, clock: Clock, strategy: Strategy) -> None:
        self._repo = repo
        self._clock = clock
        self.limits = Limits.from_strategy(strategy)
        self.trading_enabled = False
        self.positions: dict[str, Position] = {}
        self.in_flight: dict[str, str] = {}  # symbol → signal id of an entry being placed
        # Symbol → orderLinkId of an entry whose outcome is unknown: the symbol stays taken
        # (and counts against max_positions) until reconciliation says what became of it.
        self.unresolved: dict[str, str] = {}
        self.closing: set[str] = set()  # symbols with a close of ours in flight
        # After a failed automatic close, wait before the next try rather than every ticker.
        self.retry_close_at: dict[str, datetime] = {}
        self.breakeven_retry_at: dict[str, datetime] = {}  # a breakeven move that failed
        self.breakeven_told: set[str] = set()  # ... and chat was told
        self.moving: set[str] = set()  # symbols whose stop-loss is being moved to breakeven
        self.prices: dict[str, Ticker] = {}  # the last ticker of each symbol we watch
        self.recheck_orders = False  # an order's outcome is unknown: reconcile once free
        self.day = utc_day_start(clock.now())
        self.day_pnl = Decimal(0)
        self._day_loaded = False
        self._locks: dict[str, asyncio.Lock] = {}
        self.cooldowns = Cooldowns()  # the symbols waiting after a loss
        self.balance: Decimal | None = None  # as the venue last told it (trader.balance_marks)

    async def load_cooldowns(self) -> None:
        """The losing trades of the last week (the longest cooldown), each weighed whole (the
        sum of its parts), of positions no longer open: a restart keeps the waits."""
        since = self._clock.now() - cooldowns.LONGEST
        open_signals = {p.signal_id for p in self.positions.values()}
        totals: dict[str, tuple[str, datetime, Decimal]] = {}
        for trade in await self._repo.trades_closed_since(since):
            if trade.signal_id in open_signals:
                continue  # a part of a position still open: not a close yet
            _, _, net = totals.get(trade.signal_id, (trade.symbol, trade.closed_at, Decimal(0)))
            totals[trade.signal_id] = (trade.symbol, trade.closed_at, net + trade.net_pnl)
        for symbol, closed_at, net in totals.values():
            self.cooldowns.record(symbol, closed_at, net)

    def cooling(self) -> frozenset[str]:
        """The symbols in their cooldown now, as the limits in force have it."""
        return self.cooldowns.cooling(self._clock.now(), self.limits.cooldown_minutes)

    def held_symbols(self) -> set[str]:
        """Symbols with a position, an entry in flight, or an entry whose outcome is not known
        yet: one per symbol (one-way mode)."""
        return self.positions.keys() | self.in_flight.keys() | self.unresolved.keys()

    def busy(self) -> set[str]:
        """Symbols with an order in flight: left alone until it has finished."""
        return self.in_flight.keys() | self.closing

    def risk_state(self, *, own_slot: bool = False) -> RiskState:
        """Risk now; ``own_slot``: for an entry in flight, whose own slot is not counted."""
        return RiskState(
            trading_enabled=self.trading_enabled,
            open_positions=len(self.held_symbols()) - int(own_slot),
            daily_net_pnl=self.day_pnl,
        )

    def lock(self, symbol: str) -> asyncio.Lock:
        """One lock per symbol: an entry being stored and an exit never interleave."""
        return self._locks.setdefault(symbol, asyncio.Lock())

    def close_due(self, position: Position) -> bool:
        """Its TTL has passed, and no failed close asked to wait before the next try."""
        now = self._clock.now()
        retry_at = self.retry_close_at.get(position.symbol)
        return now >= position.expires_at and (retry_at is None or now >= retry_at)

    async def refresh_day(self, *, force: bool = False) -> None:
        """Today's realised PnL, read from the stored trades when the UTC day changes or a
        trade closes: derived, never accumulated, so it cannot be counted twice."""
        today = utc_day_start(self._clock.now())
        if today == self.day and self._day_loaded and not force:
            return
        trades = await self._repo.trades_closed_since(today)
        self.day = today
        self.day_pnl = sum((t.net_pnl for t in trades), Decimal(0))
        self._day_loaded = True
