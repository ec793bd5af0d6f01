"""The replies to the trader's commands and buttons: what the bot is, its status, its
closed trades, the limits, closing positions, confirmation mode and trading on/off.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.render.notes import plan_lines
from bot.render.values import (
    clock,
    count,
    esc,
    next_utc_day,
    pnl,
    price,
    qty,
    side_word,
    trailing,
    usdt,
    zone_name,
)
from trader.confirmation import Decision, Verdict
from trader.models import ClosedTrade
from trader.ports import StoredSignal
from trader.read_models import Status
from trader.rules import Limits

COMMANDS: list[tuple[str, str]] = [
    ("status", "mode, trading on/off, open positions, today's PnL, balance"),
    ("start_trading", "start taking new signals"),
    ("stop_trading", "stop taking new signals (open positions keep SL/TP)"),
    ("close", "/close SYMBOL or /close all: close at market"),
    ("limits", "show limits; /limits NAME VALUE sets one"),
    ("coins", "whitelist and blacklist; /coins add|remove|exclude|include SYMBOL..."),
    ("notify", "notifications; /notify EVENT on|silent|off"),
    ("confirm", "/confirm on|off: ask before each trade"),
    ("report", "the periodic report, now"),
    ("trades", "/trades [N]: the last N closed trades"),
    ("signals", "/signals [N]: the last N signals and what became of each"),
    ("profit", "/profit [DAYS]: closed-trade stats, all time or the last DAYS days"),
    ("daily", "/daily [N]: net PnL, trades and fees for each of the last N days"),
    ("performance", "trades, win rate and net PnL by symbol"),
    ("health", "engine, streams, last signal, clock, outbox, uptime, version"),
    ("help", "what this bot does"),
]

LIMIT_UNITS = {
    "daily_loss": " USDT",
    "margin": " USDT",
    "position_size": " USDT",
    "leverage": "x",
    "cooldown": " min",
    "max_drawdown": "%",
    "profit_target": " USDT",
}
LIMIT_MEANINGS = {
    "max_positions": "open at once",
    "daily_loss": "today's loss that stops new entries",
    "margin": "margin of each trade",
    "position_size": "cap of the margin of each trade",
    "min_confidence": "a signal's confidence to trade it",
    "leverage": "",
    "cooldown": "a symbol's signals wait this long after a losing close on it",
    "max_drawdown": "fall from the equity peak that stops trading",
    "profit_target": "today's profit that stops new entries",
}
LIMITS_USAGE = "Usage: /limits, /limits NAME VALUE or /limits NAME reset"
CLOSE_USAGE = "Usage: /close SYMBOL (e.g. /close SOLUSDT) or /close all"


# --- what the bot is, holds and has done -----------------------------------------------------


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


def last_signal_line(status: Status, zone: ZoneInfo) -> str:
    last = status.last_signal_at
    if last is None:
        return "Last signal: none yet"
    when = clock(last, zone, "%Y-%m-%d %H:%M")
    return f"Last signal: {when}" + (f" ({ago(status.now - last)})" if status.now else "")


def ago(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 0:
        return "in the future: check the generator's clock"
    if minutes < 120:
        return f"{minutes} min ago"
    hours = minutes // 60
    return f"{hours} h ago" if hours < 48 else f"{hours // 24} days ago"


def starting_text() -> str:
    return "⏳ Starting: reading the saved positions and settings. Ask again in a moment."


def status_text(status: Status, zone: ZoneInfo) -> str:
    """``zone``: the trader's (``TIMEZONE``); risk's day stays the UTC day, said where the
    zone differs."""
    mode = "LIVE" if status.mode == "live" else "PAPER"
    utc_day = "" if zone.key == "UTC" else " (UTC day)"
    trading = "ON" if status.trading_enabled else "OFF"
    lines = [
        f"<b>Status</b> · {mode} · trading {trading}"
        + (" · confirm on" if status.confirm_mode else ""),
        balance_line(status),
        f"Today{utc_day}: {pnl(status.today_pnl)}",
        last_signal_line(status, zone),
    ]
    if status.daily_loss_reached:
        turn = next_utc_day(status.now, zone) if status.now else "00:00 UTC"
        lines.append(f"🛑 Daily loss limit reached: no new entries until {turn}.")
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
        first, *more = plan_lines(p, tick)
        lines.append(f"  {first} · uPnL {upnl}")
        lines += [f"  {line}" for line in more]
        if (line := trailing(p, tick)) is not None:
            lines.append(f"  {line}")
    return "\n".join(lines)


def trades_text(trades: Sequence[ClosedTrade], zone: ZoneInfo) -> str:
    if not trades:
        return "No closed trades yet."
    lines = [f"<b>Last {count(len(trades), 'closed trade')}</b> (newest first, {zone_name(zone)})"]
    for t in trades:
        when = t.closed_at.astimezone(zone).strftime("%m-%d %H:%M")
        lines.append(
            f"{when} <b>{esc(t.symbol)}</b> {side_word(t.side)} "
            f"{esc(t.reason.value)}{' (a part)' if t.part else ''} {pnl(t.net_pnl)} "
            f"({price(t.entry_price)} → {price(t.exit_price)})"
        )
    return "\n".join(lines)


def signals_text(signals: Sequence[StoredSignal], zone: ZoneInfo) -> str:
    if not signals:
        return "No signals seen yet."
    lines = [f"<b>Last {count(len(signals), 'signal')}</b> (newest first, {zone_name(zone)})"]
    for signal in signals:
        when = (signal.timestamp or signal.seen_at).astimezone(zone).strftime("%m-%d %H:%M")
        what = (
            f"<b>{esc(signal.symbol)}</b> {esc(signal.verdict)}" if signal.symbol else "a bad row"
        )
        lines.append(f"{when} {what}: {esc(signal.outcome or 'being decided')}")
    return "\n".join(lines)


def signals_usage_text(max_signals: int) -> str:
    return f"Usage: /signals [N], with N from 1 to {max_signals}."


def trades_usage_text(max_trades: int) -> str:
    return f"Usage: /trades [N], with N from 1 to {max_trades}."


# --- limits ----------------------------------------------------------------------------------


def limits_text(limits: Limits, header: str = "<b>Limits</b>") -> str:
    lines = [header]
    for name, value in limits.as_chat_names().items():
        meaning = LIMIT_MEANINGS.get(name, "")
        lines.append(
            f"{esc(name)}: {limit_value(name, value)}" + (f" ({esc(meaning)})" if meaning else "")
        )
    lines += ["", "Change one: /limits NAME VALUE · back to the file: /limits NAME reset"]
    return "\n".join(lines)


def limit_value(name: str, value: object) -> str:
    if value is None:
        return "off"
    return f"{esc(value)}{LIMIT_UNITS.get(name, '')}"


def _limit_change(name: str, before: Limits, after: Limits) -> str:
    was = before.as_chat_names().get(name)
    now = after.as_chat_names().get(name)
    return f"{limit_value(name, was)} → {limit_value(name, now)}"


def limit_set_text(name: str, before: Limits, after: Limits) -> str:
    header = f"<b>{esc(name)}</b> changed: {_limit_change(name, before, after)}."
    return limits_text(after, header=header)


def limit_reset_text(name: str, before: Limits, after: Limits) -> str:
    header = (
        f"<b>{esc(name)}</b> is back to the strategy file's value: "
        f"{_limit_change(name, before, after)}."
    )
    return limits_text(after, header=header)


def daily_loss_lifted_text() -> str:
    return "✅ The daily-loss stop is lifted: new signals are taken again today."


def limit_refused_text(reason: str) -> str:
    return f"Nothing changed: {esc(reason)}\n{LIMITS_USAGE}"


def limits_usage_text(names: Iterable[str]) -> str:
    return f"{LIMITS_USAGE}\nNames: {esc(', '.join(names))}"


# --- trading on/off --------------------------------------------------------------------------


def trading_on_text(confirm_mode: bool, *, already: bool = False) -> str:
    return f"▶️ Trading <b>ON</b>{' already' if already else ''}: new signals will be traded" + (
        " after your confirmation." if confirm_mode else "."
    )


def trading_off_text(open_count: int, *, already: bool = False) -> str:
    kept = (
        f"{count(open_count, 'open position')} "
        f"{'keeps its' if open_count == 1 else 'keep their'} stop-loss and take-profit."
        if open_count
        else "No positions are open."
    )
    return f"⏸ Trading <b>OFF</b>{' already' if already else ''}: no new signals are taken. {kept}"


# --- closing ---------------------------------------------------------------------------------


def close_usage_text() -> str:
    return CLOSE_USAGE


def not_a_symbol_text(word: str) -> str:
    return f"{esc(word)} is not a symbol. {CLOSE_USAGE}"


def close_failed_text(symbol: str, reason: str) -> str:
    return f"⚠️ Could not close {esc(symbol)}: {esc(reason)}"


def no_position_text(symbol: str) -> str:
    return f"No open position in {esc(symbol)}."


def no_open_positions_text() -> str:
    return "No open positions."


def close_all_question(open_count: int) -> str:
    return (
        f"Close {'all ' if open_count > 1 else ''}{count(open_count, 'open position')} at market?"
    )


def close_all_yes_button(open_count: int) -> str:
    return f"Yes, close {open_count}"


def close_all_cancel_button() -> str:
    return "Cancel"


# The popups after a press on the close-all question (plain text: callback answers take no
# HTML), and what the question then says instead.


def already_answered_answer() -> str:
    return "Already answered; nothing changed."


def close_all_expired_answer() -> str:
    return "This question expired; send /close all again."


def close_all_expired_text() -> str:
    return "Expired: nothing was closed."


def close_all_cancelled_answer() -> str:
    return "Cancelled."


def close_all_cancelled_text() -> str:
    return "Cancelled: nothing was closed."


def positions_changed_answer() -> str:
    return "Positions changed since you asked; nothing closed."


def positions_changed_text(now_open: int, asked: int) -> str:
    verb = "is" if now_open == 1 else "are"
    return (
        f"Nothing closed: {count(now_open, 'position')} {verb} open now, not {asked}. "
        "Send /close all again."
    )


def closing_all_answer() -> str:
    return "Closing all positions…"


def close_all_result(trades: Sequence[ClosedTrade], still_open: int) -> str:
    total = sum((t.net_pnl for t in trades), Decimal(0))
    text = f"Closed {count(len(trades), 'position')}: {pnl(total)} net."
    if still_open:
        text += f"\n⚠️ {still_open} still open (the exchange refused; see the messages above)."
    return text


# --- confirmation mode -----------------------------------------------------------------------


def confirm_usage_text(enabled: bool) -> str:
    state = "on" if enabled else "off"
    return f"Usage: /confirm on or /confirm off (now {state})."


def confirm_mode_text(enabled: bool, timeout_seconds: int) -> str:
    if enabled:
        return (
            "Confirmation mode <b>ON</b>: each signal that passes the filters is asked here "
            f"first; no answer within {timeout_seconds} s means no trade."
        )
    return "Confirmation mode <b>OFF</b>: signals are traded without asking."


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
            return not_a_pending_trade_answer()


def not_a_pending_trade_answer() -> str:
    return "This button is not for a pending trade; nothing changed."


# --- whatever no feature took ----------------------------------------------------------------


def unknown_command_text() -> str:
    return "I don't know that one. Send /help for the commands."


def stale_button_answer() -> str:
    return "This button is no longer valid; nothing changed."
