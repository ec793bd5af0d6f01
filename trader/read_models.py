"""The read side: what the chat asks of the engine (``/status``, ``/trades``, reports), as
plain data; ``bot/render.py`` only formats it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trader import rules
from trader.book import Book
from trader.errors import ExchangeError
from trader.exchange.base import Exchange
from trader.exits import Exits
from trader.models import ClosedTrade, Position
from trader.pnl import Stats, equity_curve, trade_stats, unrealised_pnl
from trader.ports import TradeRepository
from trader.rules import Limits
from trader.settings import Strategy

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


@dataclass(frozen=True, slots=True)
class Performance:
    stats: Stats
    curve: list[tuple[datetime, Decimal]]  # balance after each closed trade


class ReadModels:
    """Answers the chat's questions from the book, the stored trades and the venue."""

    def __init__(
        self,
        *,
        book: Book,
        repo: TradeRepository,
        exchange: Exchange,
        exits: Exits,
        strategy: Strategy,
    ) -> None:
        self._book = book
        self._repo = repo
        self._exchange = exchange
        self._exits = exits
        self._strategy = strategy
        self._balance: Decimal | None = None  # the last balance the venue told us

    async def status(self, *, confirm_mode: bool) -> Status:
        """What /status shows; it answers while the venue does not (a ban, an outage), with
        the last balance it told us, marked as such."""
        book = self._book
        await book.refresh_day()
        stale = False
        balance: Decimal | None
        try:
            self._balance = balance = await self._exchange.balance()
        except ExchangeError as exc:
            log.warning("balance unavailable for /status: %s", exc)
            balance, stale = self._balance, True
        views = []
        for position in book.positions.values():
            ticker = book.prices.get(position.symbol)
            price = ticker.last if ticker else None
            upnl = (
                unrealised_pnl(position, price, self._strategy.fee_rate)
                if price is not None
                else None
            )
            tick = await self._exits.tick_size(position.symbol)
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
        )

    async def recent_trades(self, limit: int = 10) -> Sequence[ClosedTrade]:
        return await self._repo.recent_trades(limit)

    async def performance(self) -> Performance:
        """Stats and the equity curve of every closed trade (one read of the trades)."""
        trades = await self._repo.all_trades()
        start = self._strategy.paper_balance_usdt
        return Performance(trade_stats(trades, start), equity_curve(trades, start))
