"""The read side: what the chat asks of the engine (``/status``, ``/trades``, ``/profit``,
``/daily``, ``/performance``, reports), as plain data; ``bot/render.py`` only formats it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo

from trader import rules
from trader.balance_marks import balance_curve
from trader.equity_curve import EquityCurve
from trader.errors import ExchangeError
from trader.exits import Exits
from trader.models import ClosedTrade, Position
from trader.parts import Parts
from trader.pnl import Stats, StatsTally, unrealised_pnl
from trader.ports import StoredSignal, TradePoint
from trader.rules import Limits
from trader.trade_views import DailyView, ProfitView, SymbolStats, TradeViews

log = logging.getLogger(__name__)


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
    last_signal_at: datetime | None = None  # the newest signal's own time
    now: datetime | None = None  # when this was taken


@dataclass(frozen=True, slots=True)
class Performance:
    stats: Stats
    # The balance after the closed trades, in close order: every one of them up to a few
    # hundred, then at most ``equity_curve.CURVE_POINTS``, the extremes and the largest
    # drawdown kept.
    curve: list[tuple[datetime, Decimal]]
    # The balance the curve starts from: the paper starting balance, or in live mode the
    # account's just before the first trade with a balance mark (``trader.balance_marks``).
    curve_start: Decimal


@dataclass(frozen=True, slots=True)
class TradeHistory:
    """Stats and the equity curve of the closed trades counted so far, and where they end:
    the read side adds the trades booked since, instead of reading history again."""

    tally: StatsTally
    curve: EquityCurve
    last_id: int = 0  # the highest trade id counted
    last_closed: datetime | None = None  # the close time of the last trade counted

    @classmethod
    def of(cls, starting_balance: Decimal, points: Iterable[TradePoint]) -> TradeHistory:
        """The history of ``points`` (in close order) from ``starting_balance``."""
        empty = cls(StatsTally(starting_balance), EquityCurve(starting_balance))
        return empty._counted(iter(points))

    def extended(self, points: Iterable[TradePoint]) -> TradeHistory | None:
        """A copy with ``points`` (booked since, in close order) counted; None when the first
        closed before the last trade counted: the close order would change. This one is left
        as it was (a report may be reading it)."""
        points = iter(points)
        first = next(points, None)
        if first is None:
            return self
        if self.last_closed is not None and first.closed_at < self.last_closed:
            return None
        return self._counted(itertools.chain((first,), points))

    def _counted(self, points: Iterator[TradePoint]) -> TradeHistory:
        tally, curve = self.tally.copy(), self.curve.copy()
        last_id, last_closed = self.last_id, self.last_closed
        for point in points:
            curve.add(point.closed_at, point.counted(tally))
            last_id, last_closed = max(last_id, point.id), point.closed_at
        return TradeHistory(tally, curve, last_id, last_closed)


class ReadModels:
    """Answers the chat's questions from the book, the stored trades and the venue."""

    def __init__(self, parts: Parts, *, exits: Exits) -> None:
        self._book, self._repo, self._exchange = parts.book, parts.repo, parts.exchange
        self._clock = parts.clock
        self._strategy = strategy = parts.strategy
        self._exits = exits
        self._balance: Decimal | None = None  # the last balance the venue told us
        self._history = TradeHistory.of(strategy.paper_balance_usdt, ())
        self._history_lock = asyncio.Lock()  # one count at a time
        self._views: TradeViews | None = None  # /profit, /daily, /performance: built on first use
        self._views_lock = asyncio.Lock()

    async def status(
        self, *, confirm_mode: bool, last_signal_at: datetime | None = None, ask_venue: bool = True
    ) -> Status:
        """What /status shows; it answers while the venue does not (a ban, an outage), with
        the last balance it told us, marked as such."""
        book = self._book
        await book.refresh_day()
        # Not asked before it has answered once (start-up waits for it): no wait on it.
        balance, stale = self._balance, not ask_venue
        if ask_venue:
            try:
                self._balance = balance = await self._exchange.balance()
            except ExchangeError as exc:
                log.warning("balance unavailable for /status: %s", exc)
                stale = True
        views = []
        for position in book.positions.values():
            ticker = book.prices.get(position.symbol)
            price = ticker.last if ticker else None
            upnl = (
                unrealised_pnl(position, price, self._strategy.fee_rate)
                if price is not None
                else None
            )
            # Before the venue has answered, prices are shown as stored: no wait on it.
            tick = await self._exits.tick_size(position.symbol) if ask_venue else None
            views.append(PositionView(position, price, upnl, tick))
        return Status(
            mode=self._exchange.mode,
            trading_enabled=book.trading_enabled,
            positions=views,
            today_pnl=book.day_pnl,
            balance=balance,
            balance_stale=stale,
            limits=book.limits,
            daily_loss_reached=rules.daily_loss_reached(book.day_pnl, book.limits),
            confirm_mode=confirm_mode,
            last_signal_at=last_signal_at,
            now=self._clock.now(),
        )

    async def recent_signals(self, limit: int = 10) -> Sequence[StoredSignal]:
        """The newest signals, each with what became of it (``/signals``)."""
        return await self._repo.recent_signals(limit)

    async def signal_outcomes_since(self, since: datetime) -> dict[str, int]:
        """How many signals seen since ``since`` came to each outcome (the report)."""
        return await self._repo.outcomes_since(since)

    async def recent_trades(self, limit: int = 10) -> Sequence[ClosedTrade]:
        return await self._repo.recent_trades(limit)

    async def stats(self) -> Stats:
        """The stats of every closed trade (``performance`` without the curve)."""
        return (await self._counted()).tally.stats()

    async def realised_curve(self) -> tuple[Decimal, list[tuple[datetime, Decimal]]]:
        """The paper starting balance and the balance after each closed trade from it: equity
        as realised PnL alone moves it (no deposit or withdrawal), bounded as every curve."""
        history = await self._counted()
        return self._strategy.paper_balance_usdt, history.curve.points()

    async def performance(self) -> Performance:
        """Stats and the equity curve of every closed trade."""
        history = await self._counted()
        stats = history.tally.stats()
        if self._exchange.mode == "live":
            # The account as Bybit reported it after each close, not the paper start + PnL.
            start, curve = await self._repo.fold_balance_marks(balance_curve)
            return Performance(stats, curve, start)
        return Performance(stats, history.curve.points(), stats.starting_balance)

    async def _counted(self) -> TradeHistory:
        """Every closed trade counted. Only the trades booked since the last call are read:
        the whole history the first time, or again when a trade booked late closed before
        one already counted (a lost exit found by reconciliation)."""
        async with self._history_lock:
            counted = self._history
            history = await self._repo.fold_trades(counted.extended, after_id=counted.last_id)
            if history is None:
                start = self._strategy.paper_balance_usdt
                history = await self._repo.fold_trades(partial(TradeHistory.of, start))
            self._history = history
        return history

    async def profit(self, zone: ZoneInfo, days: int | None = None) -> ProfitView:
        """``/profit``: the trades closed in the last ``days`` calendar days in ``zone``, today
        included, or all of them."""
        views = await self._trade_views(zone)
        return views.profit(self._today(zone), days)

    async def daily(self, zone: ZoneInfo, days: int) -> DailyView:
        """``/daily``: each of the last ``days`` calendar days in ``zone``, today first."""
        views = await self._trade_views(zone)
        return views.daily(self._today(zone), days)

    async def symbol_performance(self, zone: ZoneInfo) -> list[SymbolStats]:
        """``/performance``: every symbol traded, the best net PnL first."""
        return (await self._trade_views(zone)).by_symbol()

    async def count_views(self, zone: ZoneInfo) -> None:
        """Count the whole history for the views once (at start-up, off the loop): the first
        ``/profit`` is then as quick as the next. After the reports' own count, not beside it:
        two folds in threads share one interpreter lock, and the first report would wait on
        both."""
        await self._counted()
        await self._trade_views(zone)

    def _today(self, zone: ZoneInfo) -> date:
        return self._clock.now().astimezone(zone).date()

    async def _trade_views(self, zone: ZoneInfo) -> TradeViews:
        """The closed trades by day in ``zone`` and by symbol. As for ``performance``, only
        the trades booked since the last call are read (the whole history the first time)."""
        async with self._views_lock:
            views = self._views
            if views is not None and views.zone is zone:
                views = await self._repo.fold_trades(views.extended, after_id=views.last_id)
            else:
                views = None
            if views is None:
                views = await self._repo.fold_trades(partial(TradeViews.of, zone))
            self._views = views
        return views
