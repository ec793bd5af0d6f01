"""The equity curve the reports draw: the balance after each closed trade, in close order,
kept to a bounded number of points however long the history (``EquityCurve``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

CURVE_POINTS = 1000  # the most points an equity curve keeps, however long the history


@dataclass(frozen=True, slots=True)
class EquityPoint:
    index: int  # the trade's place in close order, from 0
    at: datetime  # when it closed
    equity: Decimal  # the balance after it


class _Span:
    """Consecutive trades of a curve, kept as their first, lowest, highest and last point."""

    __slots__ = ("count", "first", "high", "last", "low")

    def __init__(self, point: EquityPoint) -> None:
        self.count = 1
        self.first = self.low = self.high = self.last = point

    def add(self, point: EquityPoint) -> None:
        self.count += 1
        self.last = point
        if point.equity < self.low.equity:
            self.low = point
        if point.equity > self.high.equity:
            self.high = point

    def merged(self, later: _Span) -> _Span:
        span = _Span(self.first)
        span.count = self.count + later.count
        span.last = later.last
        span.low = later.low if later.low.equity < self.low.equity else self.low
        span.high = later.high if later.high.equity > self.high.equity else self.high
        return span

    def points(self) -> tuple[EquityPoint, ...]:
        return (self.first, self.low, self.high, self.last)


class EquityCurve:
    """The balance after each closed trade, in close order, kept to at most ``limit`` points
    however long the history, so that drawing it costs the same at any size.

    The trades are cut into spans of equal length, each kept as its first, lowest, highest
    and last point: the curve's first, last, highest and lowest points are always there, and
    so are the peak and trough of the largest drawdown, kept aside. When there would be too
    many spans, neighbours merge and the span length doubles.
    """

    def __init__(self, starting_balance: Decimal, limit: int = CURVE_POINTS) -> None:
        if limit < 6:
            raise ValueError(f"an equity curve needs room for 6 points, not {limit}")
        self._most_spans = (limit - 2) // 4  # 4 points a span, and the drawdown's 2
        self._spans: list[_Span] = []
        self._span_length = 1
        self._count = 0
        # The largest drawdown, as the trade stats measure it: from the highest balance so
        # far (the starting balance until a trade beats it) down to a later one.
        self._peak: EquityPoint | None = None  # None: the starting balance
        self._peak_equity = starting_balance
        self._drawdown = Decimal(0)
        self._drawdown_points: tuple[EquityPoint, ...] = ()

    def __len__(self) -> int:
        """How many trades the curve has taken."""
        return self._count

    def add(self, at: datetime, equity: Decimal) -> None:
        """The balance after the next trade to close (``at`` never before the last one's)."""
        point = EquityPoint(self._count, at, equity)
        self._count += 1
        spans = self._spans
        if spans and spans[-1].count < self._span_length:
            spans[-1].add(point)
        else:
            spans.append(_Span(point))
            if len(spans) > self._most_spans:
                self._spans = [
                    spans[i].merged(spans[i + 1]) if i + 1 < len(spans) else spans[i]
                    for i in range(0, len(spans), 2)
                ]
                self._span_length *= 2
        if equity > self._peak_equity:
            self._peak, self._peak_equity = point, equity
        if self._peak_equity - equity > self._drawdown:
            self._drawdown = self._peak_equity - equity
            self._drawdown_points = (point,) if self._peak is None else (self._peak, point)

    def points(self) -> list[tuple[datetime, Decimal]]:
        """The points kept, in close order: every trade's up to ``(limit - 2) // 4 * 2`` of
        them (a span of two keeps both), 498 by default."""
        kept = {p.index: p for span in self._spans for p in span.points()}
        kept |= {p.index: p for p in self._drawdown_points}
        return [(kept[i].at, kept[i].equity) for i in sorted(kept)]

    def copy(self) -> EquityCurve:
        twin = copy.copy(self)
        twin._spans = [copy.copy(span) for span in self._spans]
        return twin
