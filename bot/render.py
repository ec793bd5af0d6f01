"""Every text the bot shows, in one place: Telegram HTML with each dynamic value escaped.

Numbers are for humans: prices to the instrument's tick, USDT to cents, a sign on PnL.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from trader.confirmation import Decision, Verdict
from trader.engine import Performance, Status
from trader.events import (
    ClockSkewed,
    ConfirmationRequested,
    DailyLossLimitReached,
    EngineStarted,
    EngineStopped,
    OrderFailed,
    PositionClosed,
    PositionOpened,
    PositionReduced,
    Reconciled,
    VenueBanLifted,
    VenueBanned,
)
from trader.models import ClosedTrade, CloseReason, Position, Side, Signal
from trader.rules import Limits

MESSAGE_LIMIT = 4096  # Telegram's limit on a message's text
CAPTION_LIMIT = 1024

CENT = Decimal("0.01")

COMMANDS: list[tuple[str, str]] = [
    ("status", "mode, trading on/off, open positions, today's PnL, balance"),
    ("start_trading", "start taking new signals"),
    ("stop_trading", "stop taking new signals (open positions keep SL/TP)"),
    ("close", "/close SYMBOL or /close all: close at market"),
    ("limits", "show limits; /limits NAME VALUE sets one"),
    ("confirm", "/confirm on|off: ask before each trade"),
    ("report", "the periodic report, now"),
    ("trades", "/trades [N]: the last N closed trades"),
    ("help", "what this bot does"),
]

REASON_TEXT = {
    CloseReason.STOP_LOSS: "stop-loss",
    CloseReason.TAKE_PROFIT: "take-profit",
    CloseReason.TTL: "TTL expired",
    CloseReason.MANUAL: "closed by command",
    CloseReason.DAILY_LOSS: "daily loss limit",
    CloseReason.EXTERNAL: "closed on the exchange",
    CloseReason.LIQUIDATION: "liquidated by the exchange",
    CloseReason.ADL: "auto-deleveraged by the exchange",
    CloseReason.DELIVERY: "settled by the exchange (delivery or delisting)",
    CloseReason.TRAILING_STOP: "trailing stop",
}

LIMIT_UNITS = {"daily_loss": " USDT", "position_size": " USDT", "leverage": "x"}


def esc(value: object) -> str:
    """Any dynamic value, safe inside Telegram HTML."""
    return html.escape(str(value), quote=False)


# --- numbers ---------------------------------------------------------------------------------


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


def qty(value: Decimal) -> str:
    return f"{value.normalize():f}"


def percent(share: Decimal | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def count(n: int, noun: str) -> str:
    """``1 closed trade``, ``2 closed trades``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def side_word(side: Side) -> str:
    return "long" if side is Side.BUY else "short"


def utc_time(when: datetime) -> str:
    return when.strftime("%H:%M:%S UTC")


# --- commands --------------------------------------------------------------------------------


def help_text(mode: str) -> str:
    lines = [
        "<b>Bybit auto-trader</b>",
        f"Follows the signal log and trades Bybit USDT perpetuals ({esc(mode)} mode), "
        "with exchange-side stop-loss and take-profit.",
        "",
        *(f"/{name} — {esc(description)}" for name, description in COMMANDS),
    ]
    return "\n".join(lines)


def balance_line(status: Status) -> str:
    if status.balance is None:
        return "Balance: unknown (Bybit is not answering)"
    stale = " (last known: Bybit is not answering)" if status.balance_stale else ""
    return f"Balance: {usdt(status.balance)}{stale}"


def status_text(status: Status) -> str:
    mode = "LIVE" if status.mode == "live" else "PAPER"
    trading = "ON" if status.trading_enabled else "OFF"
    lines = [
        f"<b>Status</b> · {mode} · trading {trading}"
        + (" · confirm on" if status.confirm_mode else ""),
        balance_line(status),
        f"Today: {pnl(status.today_pnl)}",
    ]
    if status.daily_loss_reached:
        lines.append("🛑 Daily loss limit reached: no new entries until 00:00 UTC.")
    limit = status.limits.max_open_positions
    if not status.positions:
        lines.append(f"Open positions: none (limit {limit})")
        return "\n".join(lines)
    lines.append(f"Open positions: {len(status.positions)}/{limit}")
    for view in status.positions:
        p, tick = view.position, view.tick_size
        upnl = "—" if view.unrealised_pnl is None else pnl(view.unrealised_pnl)
        lines.append(
            f"<b>{esc(p.symbol)}</b> {side_word(p.side)} {qty(p.qty)}"
            f" @ {price(p.entry_price, tick)}"
        )
        lines.append(f"  {protection(p, tick)} · uPnL {upnl}")
    return "\n".join(lines)


def limits_text(limits: Limits, header: str = "<b>Limits</b>") -> str:
    lines = [header]
    for name, value in limits.as_chat_names().items():
        lines.append(f"{esc(name)}: {esc(value)}{LIMIT_UNITS.get(name, '')}")
    lines += ["", "Change one: /limits NAME VALUE · back to the file: /limits NAME reset"]
    return "\n".join(lines)


def trades_text(trades: Sequence[ClosedTrade]) -> str:
    if not trades:
        return "No closed trades yet."
    lines = [f"<b>Last {count(len(trades), 'closed trade')}</b> (newest first)"]
    for t in trades:
        lines.append(
            f"{t.closed_at.strftime('%m-%d %H:%M')} <b>{esc(t.symbol)}</b> {side_word(t.side)} "
            f"{esc(t.reason.value)} {pnl(t.net_pnl)} "
            f"({price(t.entry_price)} → {price(t.exit_price)})"
        )
    return "\n".join(lines)


def close_result_text(symbol: str, trade: ClosedTrade | None) -> str:
    if trade is None:
        return f"No open position in {esc(symbol)}."
    return f"Closed {esc(symbol)} at {price(trade.exit_price)}: {pnl(trade.net_pnl)} net."


def close_all_question(open_count: int) -> str:
    return f"Close all {count(open_count, 'open position')} at market?"


def close_all_result(trades: Sequence[ClosedTrade], still_open: int) -> str:
    total = sum((t.net_pnl for t in trades), Decimal(0))
    text = f"Closed {count(len(trades), 'position')}: {pnl(total)} net."
    if still_open:
        text += f"\n⚠️ {still_open} still open (the exchange refused; see the messages above)."
    return text


def decision_answer(decision: Decision) -> str:
    """The short popup after a ✅/❌ press (plain text: callback answers take no HTML)."""
    symbol = decision.symbol or "the signal"
    match decision.verdict:
        case Verdict.OPENING:
            return f"Opening {symbol}…"
        case Verdict.DECLINED:
            return f"Skipped {symbol}."
        case Verdict.REJECTED:
            return f"Not opened: {decision.detail.replace('_', ' ')}."
        case Verdict.EXPIRED:
            return "Too late: this signal expired and was not traded."
        case Verdict.ALREADY_DECIDED if decision.detail == "expired":
            return "Too late: this signal expired and was not traded."
        case Verdict.ALREADY_DECIDED:
            return f"Already answered ({decision.detail}); nothing changed."
        case Verdict.UNAVAILABLE:
            return "The bot is shutting down; nothing changed. Try again after the restart."
        case _:
            return "This button is not for a pending trade; nothing changed."


# --- notifications ---------------------------------------------------------------------------


def opened_text(event: PositionOpened) -> str:
    p, tick = event.position, event.tick_size
    return "\n".join(
        [
            f"🟢 Opened <b>{esc(p.symbol)}</b> {side_word(p.side)}",
            f"qty {qty(p.qty)} @ {price(p.entry_price, tick)}",
            *(
                [f"⚠️ filled {qty(p.qty)} of {qty(event.ordered_qty)}: Bybit cancelled the rest"]
                if event.ordered_qty is not None
                else []
            ),
            protection(p, tick),
            f"margin {usdt(p.margin)} · {p.leverage}x",
        ]
    )


def closed_text(event: PositionClosed) -> str:
    t, tick = event.trade, event.tick_size
    icon = "✅" if t.net_pnl > 0 else "🔴"
    return "\n".join(
        [
            f"{icon} Closed <b>{esc(t.symbol)}</b> {side_word(t.side)} · "
            f"{esc(t.reason.value)} ({REASON_TEXT[t.reason]})",
            f"exit {price(t.exit_price, tick)} · entry {price(t.entry_price, tick)}",
            f"net PnL <b>{pnl(t.net_pnl)}</b> (fees {usdt(t.fees)})",
        ]
    )


def reduced_text(event: PositionReduced) -> str:
    t, rest, tick = event.trade, event.remaining, event.tick_size
    icon = "✅" if t.net_pnl > 0 else "🔴"
    return "\n".join(
        [
            f"{icon} Partly closed <b>{esc(t.symbol)}</b> {side_word(t.side)} · "
            f"{esc(t.reason.value)} ({REASON_TEXT[t.reason]})",
            f"closed {qty(t.qty)} @ {price(t.exit_price, tick)} · entry "
            f"{price(t.entry_price, tick)}",
            f"net PnL of the part <b>{pnl(t.net_pnl)}</b> (fees {usdt(t.fees)})",
            f"still open: {qty(rest.qty)}, {protection(rest, tick)}",
        ]
    )


def order_failed_text(event: OrderFailed) -> str:
    return f"⚠️ Order failed: <b>{esc(event.symbol)}</b>\n{esc(event.reason)}"


def reconciled_text(event: Reconciled) -> str:
    lines = [f"🔎 Checked against Bybit ({esc(event.trigger)}):"]
    lines += [f"• {esc(finding)}" for finding in event.findings]
    return "\n".join(lines)


def rejected_text(symbol: str, reason: str) -> str:
    return f"⛔ Signal not traded: <b>{esc(symbol)}</b> ({esc(reason.replace('_', ' '))})"


def daily_loss_text(event: DailyLossLimitReached) -> str:
    return (
        f"🛑 Daily loss limit reached: {usdt(event.loss)} lost today "
        f"(limit {usdt(event.limit)}).\n"
        "No new entries until 00:00 UTC; open positions are being closed."
    )


def engine_started_text(event: EngineStarted) -> str:
    trading = "on" if event.trading_enabled else "off (send /start_trading)"
    return (
        f"▶️ Engine started · {esc(event.mode)} mode · trading {trading} · "
        f"{count(event.open_positions, 'open position')}"
    )


def refused_text(reason: str) -> str:
    return f"⛔ Not trading: {esc(reason)}"


def engine_stopped_text(event: EngineStopped) -> str:
    return "⏹ Engine stopped. Open positions keep their stop-loss and take-profit."


def venue_banned_text(event: VenueBanned) -> str:
    return (
        f"🚫 Bybit banned this IP for too many requests ({esc(event.detail)}).\n"
        f"No call to Bybit until {utc_time(event.until)}: signals meanwhile are not traded; "
        "open positions keep their stop-loss and take-profit on the exchange."
    )


def venue_ban_lifted_text(event: VenueBanLifted) -> str:
    return "✅ Bybit answers again: the ban is over. Checking positions against Bybit."


def clock_skewed_text(event: ClockSkewed) -> str:
    offset = event.offset_ms
    where = "behind" if offset > 0 else "ahead of"
    lines = [
        f"⏱ This machine's clock is {abs(offset)} ms {where} Bybit's (offset {offset:+d} ms). "
        "Synchronise it with NTP."
    ]
    if offset < 0:  # Bybit refuses requests stamped more than 1 s after its own clock
        lines.append("Bybit refuses requests signed more than 1 s ahead of its clock.")
    else:
        lines.append("The private stream's login allows for it meanwhile.")
    return "\n".join(lines)


def _signal_line(signal: Signal) -> str:
    side = signal.side
    direction = side_word(side) if side else esc(signal.verdict)
    return f"<b>{esc(signal.symbol)}</b> {direction} · confidence {esc(signal.confidence)}"


def question_text(event: ConfirmationRequested) -> str:
    signal = event.signal
    lines = [f"❓ Trade this signal? {_signal_line(signal)}"]
    entry = f" · entry ≈ {price(signal.entry_price)}" if signal.entry_price else ""
    lines.append(f"margin {usdt(event.margin)} · {event.leverage}x{entry}")
    lines.append(f"Answer by {utc_time(event.expires_at)}; no answer means no trade.")
    return "\n".join(lines)


RESOLUTION_TEXT = {
    "approved": "✅ Approved: opening.",
    "declined": "❌ Skipped.",
    "expired": "⌛ Expired: not traded.",
}


def resolved_text(symbol: str, signal: Signal | None, status: str, detail: str = "") -> str:
    head = f"Signal {_signal_line(signal)}" if signal else f"Signal <b>{esc(symbol)}</b>"
    if detail.startswith("rejected:"):
        reason = detail.removeprefix("rejected:").replace("_", " ")
        return f"{head}\n✅ Approved, but not opened: {esc(reason)}."
    return f"{head}\n{RESOLUTION_TEXT.get(status, esc(status))}"


# --- reports ---------------------------------------------------------------------------------


def report_text(status: Status, performance: Performance, now: datetime) -> str:
    stats = performance.stats
    lines = [
        f"📊 <b>Report</b> · {now.strftime('%Y-%m-%d %H:%M UTC')}",
        balance_line(status),
        f"Today: {pnl(status.today_pnl)}",
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
    return "\n".join(lines)


def chart_caption(performance: Performance) -> str:
    stats = performance.stats
    return f"Equity after {count(stats.trades, 'closed trade')}: {pnl(stats.net_pnl)} net of fees"


# --- splitting -------------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """The text a user sees, without markup (a fallback when Telegram refuses the HTML)."""
    return html.unescape(_TAG.sub("", text))


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut a message into parts Telegram accepts, at line ends. Our lines close their own
    tags, so a cut between lines never splits one; a single overlong line is cut hard."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current or not parts:
        parts.append(current)
    return [part for part in parts if part.strip()] or [text[:limit]]
