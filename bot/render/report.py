"""The report (on ``/report`` and on a schedule) and the caption of its equity chart."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.render.commands import balance_line
from bot.render.values import clock, count, esc, percent, pnl, side_word, usdt
from trader.read_models import Performance, Status


def report_text(
    status: Status,
    performance: Performance,
    now: datetime,
    zone: ZoneInfo,
    outcomes: Mapping[str, int] | None = None,
    since: datetime | None = None,
) -> str:
    stats = performance.stats
    lines = [
        f"📊 <b>Report</b> · {clock(now, zone, '%Y-%m-%d %H:%M')}",
        balance_line(status),
        f"Today{'' if zone.key == 'UTC' else ' (UTC day)'}: {pnl(status.today_pnl)}",
        f"Closed trades: {stats.trades} · win rate {percent(stats.win_rate)} · "
        f"net {pnl(stats.net_pnl)} · fees {usdt(stats.fees)}",
    ]
    if status.positions:
        lines.append(f"Open positions: {len(status.positions)}")
        for view in status.positions:
            p = view.position
            upnl = "—" if view.unrealised_pnl is None else pnl(view.unrealised_pnl)
            lines.append(f"  <b>{esc(p.symbol)}</b> {side_word(p.side)} · uPnL {upnl}")
    else:
        lines.append("Open positions: none")
    if outcomes is not None and since is not None:
        lines.append(signal_outcomes_line(outcomes, clock(since, zone, "%H:%M")))
    return "\n".join(lines)


def signal_outcomes_line(outcomes: Mapping[str, int], since: str, most: int = 6) -> str:
    """The signals seen since ``since`` (a time as shown), by outcome, most frequent first."""
    head = f"Signals since {since}"
    if not outcomes:
        return f"{head}: none"
    ranked = sorted(outcomes.items(), key=lambda item: (-item[1], item[0]))
    parts = [f"{n} {esc(outcome)}" for outcome, n in ranked[:most]]
    rest = sum(n for _, n in ranked[most:])
    if rest:
        parts.append(f"{rest} other")
    return f"{head} ({sum(outcomes.values())}): " + " · ".join(parts)


def chart_caption(performance: Performance) -> str:
    stats = performance.stats
    return f"Equity after {count(stats.trades, 'closed trade')}: {pnl(stats.net_pnl)} net of fees"
