"""The equity chart's time axis: room around a few trades, never past now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trader.charts import MIN_SPAN, axis_span, equity_png

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_the_axis_never_runs_past_now() -> None:
    left, right = axis_span(T0, T0 + timedelta(minutes=5), now=T0 + timedelta(minutes=6))
    assert right == T0 + timedelta(minutes=6)  # not 30 minutes into the future
    assert right - left >= MIN_SPAN  # the room goes before the first trade


def test_without_now_a_short_history_is_centred() -> None:
    left, right = axis_span(T0, T0 + timedelta(minutes=10), now=None)
    assert (T0 - left, right - (T0 + timedelta(minutes=10))) == (
        timedelta(minutes=25),
        timedelta(minutes=25),
    )


def test_a_long_history_gets_a_small_margin_and_stops_at_now() -> None:
    last = T0 + timedelta(days=10)
    left, right = axis_span(T0, last, now=last)
    assert right == last
    assert T0 - left == timedelta(days=10) * 0.03


def test_the_chart_is_a_png_with_now() -> None:
    curve = [(T0, Decimal(1010)), (T0 + timedelta(minutes=3), Decimal(995))]
    png = equity_png(curve, starting_balance=Decimal(1000), title="Equity", now=T0)
    assert png.startswith(b"\x89PNG")
