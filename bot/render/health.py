"""The reply to /health: the engine, its streams, the signal log, the clock and the outbox, in
a few short lines, every time given as an age ("12 s ago")."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bot.render.values import count, esc

if TYPE_CHECKING:
    from bot.health import HealthReport
    from trader.exchange.base import StreamHealth

# A skew beyond this is what start-up reports in chat: worth a mark here too.
SKEW_WARNED_MS = 1000


def duration(seconds: float) -> str:
    """``12 s``, ``3 min``, ``5 h 12 min``, ``3 days``: as precise as a glance needs."""
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return count(hours // 24, "day")


def age(elapsed: timedelta) -> str:
    if elapsed < timedelta(0):
        return "in the future: check the generator's clock"
    return f"{duration(elapsed.total_seconds())} ago"


def stream_line(name: str, stream: StreamHealth) -> str:
    if stream.state == "connected":
        state = f"connected for {duration(stream.for_seconds)}"
    elif stream.state == "idle":
        state = "idle (no symbol to stream)"
    else:
        state = f"⚠️ reconnecting since {duration(stream.for_seconds)} ago"
    if stream.reconnects:
        state += f" ({count(stream.reconnects, 'reconnect')})"
    return f"{esc(name.capitalize())} stream: {state}"


def clock_line(skew_ms: int | None) -> str:
    """Bybit's clock against ours: ``skew_ms`` is theirs minus ours (positive: ours is behind)."""
    if skew_ms is None:
        return "Clock: not measured yet"
    if skew_ms == 0:
        return "Clock: in step with Bybit"
    mark = "⚠️ " if abs(skew_ms) > SKEW_WARNED_MS else ""
    side = "behind" if skew_ms > 0 else "ahead of"
    return f"Clock: {mark}{abs(skew_ms):,} ms {side} Bybit"


def health_text(report: HealthReport) -> str:
    verdict = "OK" if report.healthy else "⚠️ " + "; ".join(report.problems)
    engine = "running" if report.running else "⚠️ not running"
    trading = "ON" if report.trading else "OFF"
    lines = [
        f"🩺 <b>Health: {esc(verdict)}</b>",
        f"Engine: {engine} · {esc(report.mode)} mode · trading {trading}",
        *(stream_line(name, stream) for name, stream in report.streams.items()),
        "Last signal: "
        + ("none yet" if report.last_signal_age is None else age(report.last_signal_age)),
    ]
    if report.mode == "live":
        lines.append(clock_line(report.clock_skew_ms))
    backlog = report.outbox_backlog
    lines.append(f"Outbox: {count(backlog, 'message')} waiting" if backlog else "Outbox: empty")
    lines.append(f"Up {duration(report.uptime.total_seconds())} · v{esc(report.version)}")
    return "\n".join(lines)
