"""The closed trades by calendar day (in the trader's zone) and by symbol, for ``/profit``,
``/daily`` and ``/performance``: ``StatsTally``s kept up to date as trades close.

Each day and each symbol has a tally of its trades, counted in close order. A run of days is
their tallies merged in day order, which gives the same figures as counting its trades one by
one (``StatsTally.merge``), so a command costs the same whatever the history's length.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from trader.pnl import Stats, StatsTally
from trader.ports import TradePoint

K = TypeVar("K")
NOTHING = Decimal(0)  # a view's tallies start from 0: its figures are PnL, not a balance


@dataclass(frozen=True, slots=True)
class ProfitView:
    """``/profit``: the trades closed in the last ``days`` calendar days in ``zone`` (from
    ``since`` on, today included), or all of them (``days`` None)."""

    stats: Stats
    days: int | None
    since: date | None
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class DayStats:
    day: date  # a calendar day in the view's zone
    stats: Stats


@dataclass(frozen=True, slots=True)
class DailyView:
    """``/daily``: one entry per calendar day in ``zone``, newest (today) first; a day with
    no trade closed is there too, with zero figures. ``total``: the days together."""

    days: list[DayStats]
    total: Stats
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class SymbolStats:
    symbol: str
    stats: Stats


@dataclass(frozen=True, slots=True)
class TradeViews:
    """The tallies of every trade counted so far, by day in ``zone`` and by symbol, and where
    they end. A copy is extended with the trades booked since; this one is never changed (a
    command may be reading it)."""

    zone: ZoneInfo
    days: dict[date, StatsTally] = field(default_factory=dict)
    symbols: dict[str, StatsTally] = field(default_factory=dict)
    last_id: int = 0  # the highest trade id counted
    last_closed: datetime | None = None  # the close time of the last trade counted

    @classmethod
    def of(cls, zone: ZoneInfo, points: Iterable[TradePoint]) -> TradeViews:
        """The views of ``points`` (in close order) by day in ``zone``."""
        return cls(zone)._counted(iter(points))

    def extended(self, points: Iterable[TradePoint]) -> TradeViews | None:
        """A copy with ``points`` (booked since, in close order) counted; None when the first
        closed before the last trade counted: a day's close order would change."""
        points = iter(points)
        first = next(points, None)
        if first is None:
            return self
        if self.last_closed is not None and first.closed_at < self.last_closed:
            return None
        return self._counted(itertools.chain((first,), points))

    def _counted(self, points: Iterator[TradePoint]) -> TradeViews:
        zone = self.zone
        days, symbols = dict(self.days), dict(self.symbols)
        # The tallies this count has copied already: it changes copies only.
        own_days: set[date] = set()
        own_symbols: set[str] = set()
        last_id, last_closed = self.last_id, self.last_closed
        for point in points:
            day = point.closed_at.astimezone(zone).date()
            point.counted(_own(days, day, own_days))
            point.counted(_own(symbols, point.symbol, own_symbols))
            last_id, last_closed = max(last_id, point.id), point.closed_at
        return TradeViews(zone, days, symbols, last_id, last_closed)

    def profit(self, today: date, days: int | None = None) -> ProfitView:
        """The trades of the last ``days`` calendar days, today included (all of them with
        None)."""
        since = None if days is None else today - timedelta(days=days - 1)
        return ProfitView(self._merged(since, None), days, since, self.zone)

    def daily(self, today: date, days: int) -> DailyView:
        """Each of the last ``days`` calendar days, today first."""
        empty = StatsTally(NOTHING)
        entries = []
        for back in range(days):
            day = today - timedelta(days=back)
            entries.append(DayStats(day, self.days.get(day, empty).stats()))
        total = self._merged(today - timedelta(days=days - 1), today)
        return DailyView(entries, total, self.zone)

    def _merged(self, first: date | None, last: date | None) -> Stats:
        """The days from ``first`` to ``last`` (either end open with None) as one tally,
        merged in day order."""
        tally = StatsTally(NOTHING)
        for day in sorted(self.days):
            if (first is None or day >= first) and (last is None or day <= last):
                tally.merge(self.days[day])
        return tally.stats()

    def by_symbol(self) -> list[SymbolStats]:
        """Every symbol traded, the best net PnL first (ties by name)."""
        rows = [SymbolStats(symbol, tally.stats()) for symbol, tally in self.symbols.items()]
        rows.sort(key=lambda row: (-row.stats.net_pnl, row.symbol))
        return rows


def _own(table: dict[K, StatsTally], key: K, owned: set[K]) -> StatsTally:
    """``table[key]``, a fresh tally or a copy of the one there, to be changed."""
    if key not in owned:
        tally = table.get(key)
        table[key] = StatsTally(NOTHING) if tally is None else tally.copy()
        owned.add(key)
    return table[key]
