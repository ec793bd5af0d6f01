"""Images: the equity curve as a PNG, readable on a phone. Used by replay and the reports.

matplotlib with the non-interactive Agg backend: no display, safe in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no display here
from matplotlib.axes import Axes
from matplotlib.figure import Figure

GREEN = "#1a9850"
RED = "#d73027"
MIN_SPAN = timedelta(hours=1)  # the narrowest time axis drawn
MARKER_LIMIT = 60  # up to this many trades, each close gets a dot


def equity_png(
    curve: Sequence[tuple[datetime, Decimal]],
    *,
    starting_balance: Decimal,
    title: str,
    subtitle: str = "",
    now: datetime | None = None,
    zone: tzinfo = UTC,
) -> bytes:
    """The equity curve (the balance after closed trades, in close order; for a long history
    the bounded series of ``equity_curve.EquityCurve``) as PNG bytes. With ``now``, the time axis
    never runs past it. Times on the axis are in ``zone``, which labels it.

    Built on a ``Figure`` object, not pyplot, so no global state is shared between threads.
    """
    fig = Figure(figsize=(8, 4.5), dpi=150)
    ax = fig.add_subplot()
    times = [_days(when) for when, _ in curve]
    values = [float(equity) for _, equity in curve]
    base = float(starting_balance)
    first, last = (curve[0][0], curve[-1][0]) if curve else (None, None)
    if first is not None and last is not None:
        first, last = axis_span(first, last, now)
        times = [_days(first), *times, _days(last)]
        values = [base, *values, values[-1]]
    ax.plot(times, values, color="#2c3e50", linewidth=1.6, drawstyle="steps-post")
    if 0 < len(curve) <= MARKER_LIMIT:
        # Few enough trades to see each one: a dot per close, green for a win.
        previous = [base, *values[1:-2]]
        colours = [GREEN if v >= p else RED for v, p in zip(values[1:-1], previous, strict=True)]
        ax.scatter(times[1:-1], values[1:-1], c=colours, s=18, zorder=3)
    ax.axhline(base, color="#7f8c8d", linewidth=0.8, linestyle="--")
    # Above the start green, below it red: each series clipped at the starting balance, so
    # the fill follows the steps exactly (no slanted edges where the line crosses it).
    ax.fill_between(
        times, [max(v, base) for v in values], base, color=GREEN, alpha=0.25, step="post"
    )
    ax.fill_between(times, [min(v, base) for v in values], base, color=RED, alpha=0.25, step="post")
    ax.set_title(title, fontsize=13, loc="left", fontweight="bold")
    if subtitle:
        ax.text(
            0.0, 1.01, subtitle, transform=ax.transAxes, fontsize=9, color="#555555", va="bottom"
        )
        ax.set_title(title, fontsize=13, loc="left", fontweight="bold", pad=18)
    ax.set_ylabel("Balance, USDT", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=9)
    if not curve:
        ax.text(
            0.5, 0.5, "no closed trades yet", transform=ax.transAxes, ha="center", color="#7f8c8d"
        )
    if first is not None and last is not None:
        ax.set_xlim(_days(first), _days(last))
        _time_ticks(ax, first, last, zone)
    fig.tight_layout()
    buffer = BytesIO()
    fig.savefig(buffer, format="png")
    # A figure is a web of cycles that only a full collection would free; cleared, most of
    # it goes at once, so that report after report does not pile megabytes up meanwhile.
    fig.clear()
    return buffer.getvalue()


def axis_span(first: datetime, last: datetime, now: datetime | None) -> tuple[datetime, datetime]:
    """The time axis for trades closed from ``first`` to ``last``. A few trades close together
    would draw as one vertical stroke: the axis gets room either side (at least ``MIN_SPAN``
    in all), and the line starts there at the starting balance; but never past ``now``: what
    has not happened yet is not drawn, the room goes before the first trade instead."""
    span = last - first
    pad = (MIN_SPAN - span) / 2 if span < MIN_SPAN else span * 0.03
    right = last + pad
    if now is not None:
        right = max(last, min(right, now))
    left = min(first - pad, right - max(MIN_SPAN, span))
    return left, right


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _days(when: datetime) -> float:
    """Time as days since 1970 (matplotlib's own date axis unit)."""
    return (when - _EPOCH).total_seconds() / 86400


def _time_ticks(ax: Axes, first: datetime, last: datetime, zone: tzinfo, count: int = 6) -> None:
    """A handful of readable time labels, in ``zone``, between the first and last trade."""
    span = last - first
    moments = [first + span * i / (count - 1) for i in range(count)] if span else [first]
    if span <= timedelta(days=1):
        fmt = "%H:%M"
    elif span <= timedelta(days=90):
        fmt = "%d %b %H:%M"
    else:
        fmt = "%d %b %Y"  # a long history: which year matters more than the hour
    labels = [m.astimezone(zone).strftime(fmt) for m in moments]
    ax.set_xticks([_days(m) for m in moments], labels)
    ax.set_xlabel(_zone_name(zone, last), fontsize=9)


def _zone_name(zone: tzinfo, when: datetime) -> str:
    """The axis label: the IANA name where there is one (``Asia/Dubai``), else ``UTC``."""
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else (when.astimezone(zone).tzname() or "UTC")


def write_equity_png(path: Path, png: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
