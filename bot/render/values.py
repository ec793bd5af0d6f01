"""One dynamic value as the trader reads it: escaped for Telegram HTML, prices to the
instrument's tick, USDT to cents, a sign on PnL.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from trader.models import Position, Side

CENT = Decimal("0.01")


def esc(value: object) -> str:
    """Any dynamic value, safe inside Telegram HTML."""
    return html.escape(str(value), quote=False)


def usdt(value: Decimal) -> str:
    """``1,234.57 USDT``: to the cent, with thousands separators."""
    return f"{value.quantize(CENT, ROUND_HALF_EVEN):,} USDT"


def pnl(value: Decimal) -> str:
    """PnL with its sign: ``+12.30 USDT``, ``-4.05 USDT``."""
    cents = value.quantize(CENT, ROUND_HALF_EVEN)
    sign = "+" if cents > 0 else ""  # a negative value carries its own '-'
    return f"{sign}{cents:,} USDT"


def price(value: Decimal, tick: Decimal | None = None) -> str:
    """A price as the venue quotes it: to the tick when known, else as stored."""
    if tick is not None and tick > 0:
        value = value.quantize(tick.normalize(), ROUND_HALF_EVEN)
        return f"{value:f}"
    return f"{value.normalize():f}"


def protection(position: Position, tick: Decimal | None = None) -> str:
    """A position's SL and TP; a missing one (0: the venue holds none) is said plainly."""
    stop = price(position.stop_loss, tick) if position.stop_loss > 0 else "⚠️ none"
    take = price(position.take_profit, tick) if position.take_profit > 0 else "none"
    return f"SL {stop} · TP {take}"


def trailing(position: Position, tick: Decimal | None = None) -> str | None:
    """A position's trailing stop: its distance and where it activates; None without one."""
    stop = position.trailing
    if stop is None:
        return None
    start = "at once" if stop.active_price is None else f"from {price(stop.active_price, tick)}"
    return f"trailing stop {price(stop.distance, tick)} · active {start}"


def qty(value: Decimal) -> str:
    return f"{value.normalize():f}"


def percent(share: Decimal | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def count(n: int, noun: str) -> str:
    """``1 closed trade``, ``2 closed trades``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def side_word(side: Side) -> str:
    return "long" if side is Side.BUY else "short"


def clock(when: datetime, zone: ZoneInfo, fmt: str = "%H:%M:%S") -> str:
    """``when`` in the trader's zone (``TIMEZONE``), labelled: ``14:05:10 CET``,
    ``18:05:10 UTC+4`` (a zone without a lettered abbreviation gets its offset)."""
    local = when.astimezone(zone)
    return f"{local.strftime(fmt)} {zone_label(local)}"


def next_utc_day(now: datetime, zone: ZoneInfo) -> str:
    """When risk's day (the UTC day) turns after ``now``, as the trader reads it:
    ``00:00 UTC``, or ``04:00 UTC+4 (00:00 UTC)`` in another zone."""
    midnight = (now.astimezone(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    if zone.key == "UTC":
        return "00:00 UTC"
    return f"{clock(midnight, zone, '%H:%M')} (00:00 UTC)"


def zone_name(zone: ZoneInfo) -> str:
    """A list's times are in this zone: ``UTC``, ``Asia/Dubai``."""
    return zone.key


def zone_label(local: datetime) -> str:
    name = local.tzname() or ""
    if name.isalpha():
        return name
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
