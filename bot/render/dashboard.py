"""The closed-trade statistics the trader asks for: ``/profit``, ``/daily`` and
``/performance``. Days are calendar days in the trader's zone, named in each reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from bot.render.values import count, esc, percent, pnl, usdt, zone_name
from trader.pnl import Stats
from trader.trade_views import DailyView, ProfitView, SymbolStats

PERFORMANCE_ROWS = 15  # symbols listed: a phone screen's worth; the rest are summed up


def profit_text(view: ProfitView) -> str:
    stats = view.stats
    zone = zone_name(view.zone)
    if view.days is None or view.since is None:
        header = "<b>Profit</b> · all time"
    elif view.days == 1:
        header = f"<b>Profit</b> · today ({_date(view.since)}, {esc(zone)})"
    else:
        header = f"<b>Profit</b> · last {view.days:,} days (since {_date(view.since)}, {esc(zone)})"
    if stats.moves == 0:
        return f"{header}\nNo trades closed in this time."
    if stats.trades == 0:  # only parts (take-profits) of positions that end later
        return (
            f"{header}\nNo trade ended in this time; parts of positions closed: "
            f"net PnL {pnl(stats.net_pnl)} · fees {usdt(stats.fees)}"
        )
    lines = [
        header,
        f"Closed trades: {stats.trades:,} · won {stats.wins:,} · win rate "
        f"{percent(stats.win_rate)}",
        f"Net PnL: {pnl(stats.net_pnl)} · fees {usdt(stats.fees)}",
        f"Profit factor: {profit_factor(stats)}",
        f"Best trade: {_opt_pnl(stats.best)} · worst: {_opt_pnl(stats.worst)}",
        f"Average holding time: {duration(stats.average_holding)}",
        f"Max drawdown: {usdt(stats.max_drawdown)}",
    ]
    return "\n".join(lines)


def daily_text(view: DailyView) -> str:
    lines = [
        f"<b>Daily PnL</b> · last {count(len(view.days), 'day')} ({esc(zone_name(view.zone))}), "
        "newest first"
    ]
    for entry in view.days:
        stats = entry.stats
        lines.append(
            f"{entry.day.strftime('%a %m-%d')}: {pnl(stats.net_pnl)} · "
            f"{count(stats.trades, 'trade')} · fees {usdt(stats.fees)}"
        )
    total = view.total
    lines.append(
        f"<b>Total</b>: {pnl(total.net_pnl)} · {count(total.trades, 'trade')} · "
        f"fees {usdt(total.fees)}"
    )
    return "\n".join(lines)


def performance_text(rows: Sequence[SymbolStats], most: int = PERFORMANCE_ROWS) -> str:
    if not rows:
        return "No closed trades yet."
    lines = ["<b>Performance by symbol</b> · all time, best net PnL first"]
    for row in rows[:most]:
        stats = row.stats
        lines.append(
            f"<b>{esc(row.symbol)}</b>: {pnl(stats.net_pnl)} · {count(stats.trades, 'trade')} "
            f"· win rate {percent(stats.win_rate)}"
        )
    rest = rows[most:]
    if rest:
        trades = sum(row.stats.trades for row in rest)
        net = sum((row.stats.net_pnl for row in rest), Decimal(0))
        lines.append(
            f"…and {count(len(rest), 'more symbol')} not shown: "
            f"{count(trades, 'trade')}, {pnl(net)} net"
        )
    return "\n".join(lines)


def profit_usage_text(most_days: int) -> str:
    return f"Usage: /profit for all time, or /profit DAYS with DAYS from 1 to {most_days:,}."


def daily_usage_text(most_days: int) -> str:
    return f"Usage: /daily [N]: the last N days, N from 1 to {most_days} (default 7)."


def performance_usage_text() -> str:
    return "Usage: /performance (no arguments): every symbol traded, all time."


# --- values --------------------------------------------------------------------------------


def profit_factor(stats: Stats) -> str:
    """Gross profit over gross loss, to two places; said plainly when there is no loss."""
    factor = stats.profit_factor
    if factor is None:
        return "n/a (no losing trade)" if stats.wins else "n/a"
    return f"{factor.quantize(Decimal('0.01'), ROUND_HALF_EVEN)}"


def duration(span: timedelta | None) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``: a span as a trader reads it."""
    if span is None:
        return "—"
    seconds = round(span.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _opt_pnl(value: Decimal | None) -> str:
    return "—" if value is None else pnl(value)


def _date(day: date) -> str:
    return day.strftime("%Y-%m-%d")
