"""The equity curve a report draws: bounded however long the history, and honest about it
(the first and last points, the highest and lowest, and the largest drawdown are kept)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.equity_curve import CURVE_POINTS, EquityCurve

T0 = datetime(2025, 3, 1, tzinfo=UTC)
START = Decimal(1000)


def full_curve(steps: list[Decimal]) -> list[tuple[datetime, Decimal]]:
    equity, curve = START, []
    for i, step in enumerate(steps):
        equity += step
        curve.append((T0 + timedelta(minutes=i // 3), equity))  # some close together
    return curve


def bounded(curve: list[tuple[datetime, Decimal]], limit: int) -> list[tuple[datetime, Decimal]]:
    kept = EquityCurve(START, limit)
    for at, equity in curve:
        kept.add(at, equity)
    assert len(kept) == len(curve)
    return kept.points()


def max_drawdown(curve: list[tuple[datetime, Decimal]]) -> Decimal:
    peak, drawdown = START, Decimal(0)
    for _, equity in curve:
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    return drawdown


def is_in_order_within(points: list[tuple[datetime, Decimal]], curve: list[object]) -> bool:
    remaining = iter(curve)
    return all(point in remaining for point in points)


steps = st.lists(st.decimals(min_value=-50, max_value=50, places=2).map(Decimal), max_size=3000)


@settings(max_examples=150, deadline=None)
@given(steps=steps, limit=st.integers(min_value=6, max_value=60))
def test_kept_points_are_few_and_honest(steps: list[Decimal], limit: int) -> None:
    curve = full_curve(steps)
    points = bounded(curve, limit)
    assert len(points) <= limit
    assert is_in_order_within(points, list(curve))  # real points, in close order
    if not curve:
        assert points == []
        return
    assert points[0] == curve[0]
    assert points[-1] == curve[-1]
    equities = [e for _, e in curve]
    kept = [e for _, e in points]
    assert max(kept) == max(equities)
    assert min(kept) == min(equities)
    # The drawdown the stats report is the one the chart shows: its peak and trough are kept.
    assert max_drawdown(points) == max_drawdown(curve)


def test_every_point_is_kept_while_they_fit() -> None:
    # Spans of two trades keep both; a few hundred trades are drawn one by one.
    fitting = (CURVE_POINTS - 2) // 4 * 2
    curve = full_curve([Decimal(i % 5 - 2) for i in range(fitting)])
    assert bounded(curve, CURVE_POINTS) == curve
    longer = full_curve([Decimal(i % 5 - 2) for i in range(fitting + 1)])
    assert len(bounded(longer, CURVE_POINTS)) < len(longer)


def test_a_long_history_keeps_at_most_the_limit() -> None:
    curve = full_curve([Decimal(i % 11 - 5) for i in range(20_000)])
    points = bounded(curve, CURVE_POINTS)
    assert CURVE_POINTS // 2 < len(points) <= CURVE_POINTS


def test_a_copy_grows_on_its_own() -> None:
    kept = EquityCurve(START, 10)
    kept.add(T0, Decimal(1001))
    twin = kept.copy()
    for i in range(30):
        twin.add(T0 + timedelta(minutes=i + 1), Decimal(900 + i))
    assert kept.points() == [(T0, Decimal(1001))]
    assert len(twin) == 31


def test_a_curve_needs_room_for_its_extremes() -> None:
    with pytest.raises(ValueError, match="room for 6 points"):
        EquityCurve(START, 5)
