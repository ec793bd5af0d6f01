"""What the chats are told about the engine's events: entries, exits, failures, checks
against Bybit, the daily loss stop and the confirmation questions (the notifier's notes).
"""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.render.values import (
    clock,
    count,
    esc,
    next_utc_day,
    pnl,
    price,
    protection,
    qty,
    side_word,
    trailing,
    usdt,
)
from trader.events import (
    ClockSkewed,
    ConfirmationRequested,
    DailyLossLimitReached,
    DailyProfitTargetReached,
    DrawdownStopped,
    EngineStarted,
    EngineStopped,
    OrderFailed,
    PositionClosed,
    PositionOpened,
    PositionReduced,
    Reconciled,
    SignalLogMissing,
    SignalLogResumed,
    SignalLogSilent,
    VenueBanLifted,
    VenueBanned,
    VenueReachable,
    VenueUnreachable,
)
from trader.models import CloseReason, Position, Signal
from trader.strategy import Strategy

REASON_TEXT = {
    CloseReason.STOP_LOSS: "stop-loss",
    CloseReason.TAKE_PROFIT: "take-profit",
    CloseReason.TTL: "time limit reached",
    CloseReason.MANUAL: "closed by command",
    CloseReason.DAILY_LOSS: "daily loss limit",
    CloseReason.DRAWDOWN: "drawdown stop",
    CloseReason.EXTERNAL: "closed on the exchange",
    CloseReason.LIQUIDATION: "liquidated by the exchange",
    CloseReason.ADL: "auto-deleveraged by the exchange",
    CloseReason.DELIVERY: "settled by the exchange (delivery or delisting)",
    CloseReason.TRAILING_STOP: "trailing stop",
}


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
            *plan_lines(p, tick),
            *([line] if (line := trailing(p, tick)) else []),
            f"margin {usdt(p.margin)} · {p.leverage}x"
            + (
                f" (capped from {event.leverage_capped_from}x: {esc(p.symbol)}'s maximum)"
                if event.leverage_capped_from is not None
                else ""
            ),
        ]
    )


def closed_text(event: PositionClosed) -> str:
    t, tick = event.trade, event.tick_size
    icon = "✅" if event.total > 0 else "🔴"
    why = REASON_TEXT[t.reason] + (" at breakeven" if event.at_breakeven else "")
    return "\n".join(
        [
            f"{icon} Closed <b>{esc(t.symbol)}</b> {side_word(t.side)} · "
            f"{esc(t.reason.value)} ({why})",
            f"exit {price(t.exit_price, tick)} · entry {price(t.entry_price, tick)}",
            *_net_lines(event),
        ]
    )


def _net_lines(event: PositionClosed) -> list[str]:
    t = event.trade
    if not event.earlier:
        return [f"net PnL <b>{pnl(t.net_pnl)}</b> (fees {usdt(t.fees)})"]
    parts = len(event.earlier) + 1
    return [
        f"net PnL of the last part {pnl(t.net_pnl)} (fees {usdt(t.fees)})",
        f"the trade, {parts} parts: net PnL <b>{pnl(event.total)}</b>",
    ]


def reduced_text(event: PositionReduced) -> str:
    t, rest, tick = event.trade, event.remaining, event.tick_size
    icon = "✅" if t.net_pnl > 0 else "🔴"
    why = f"{esc(t.reason.value)} ({REASON_TEXT[t.reason]})"
    plan = rest.take_profits
    if event.take_profit is not None and plan is not None:  # which of the plan's TPs
        why = f"TP{event.take_profit} of {len(plan.levels)} (take-profit)"
    return "\n".join(
        [
            f"{icon} Partly closed <b>{esc(t.symbol)}</b> {side_word(t.side)} · {why}",
            f"closed {qty(t.qty)} @ {price(t.exit_price, tick)} · entry "
            f"{price(t.entry_price, tick)}",
            f"net PnL of the part <b>{pnl(t.net_pnl)}</b> (fees {usdt(t.fees)})",
            f"still open: {qty(rest.qty)}, {plan_lines(rest, tick)[0]}",
            *plan_lines(rest, tick)[1:],
        ]
    )


def plan_lines(position: Position, tick: Decimal | None = None) -> list[str]:
    """A position's SL and TP; with several take-profits, the SL, then each TP's level and
    qty (those filled ticked), then the breakeven rule or that the SL moved to it."""
    plan = position.take_profits
    if plan is None:
        return [protection(position, tick)]
    stop = price(position.stop_loss, tick) if position.stop_loss > 0 else "⚠️ none"
    filled = plan.filled()
    tps = " · ".join(
        f"TP{number} {price(level.price, tick)} × {qty(level.qty)}"
        + (" ✓" if number <= filled else "")
        for number, level in enumerate(plan.levels, 1)
    )
    lines = [f"SL {stop}", tps]
    after, even = plan.breakeven_after, plan.breakeven_price
    if after is not None and even is not None:
        if plan.breakeven_moved:
            lines[0] += " (moved to breakeven)"
        elif filled >= after:  # TP N filled: the move is on its way to the venue
            lines[0] += f" · moving to breakeven {price(even, tick)}"
        else:
            lines[0] += f" · to breakeven {price(even, tick)} after TP{after}"
    return lines


def order_failed_text(event: OrderFailed) -> str:
    return f"⚠️ Order failed: <b>{esc(event.symbol)}</b>\n{esc(event.reason)}"


def reconciled_text(event: Reconciled) -> str:
    lines = [f"🔎 Checked against Bybit ({esc(event.trigger)}):"]
    lines += [f"• {esc(finding)}" for finding in event.findings]
    return "\n".join(lines)


def rejected_text(symbol: str, reason: str) -> str:
    return f"⛔ Signal not traded: <b>{esc(symbol)}</b> ({esc(reason.replace('_', ' '))})"


def skipped_text(symbol: str, outcome: str) -> str:
    """One line for a filtered, stale or invalid signal (``/notify skipped``)."""
    verdict, _, reason = outcome.partition(":")
    what = f"<b>{esc(symbol)}</b>" if symbol else "a signal row"
    return f"⏭ Skipped {what}: {esc(verdict)} ({esc(reason.replace('_', ' '))})"


def daily_loss_text(event: DailyLossLimitReached, zone: ZoneInfo) -> str:
    return (
        f"🛑 Daily loss limit reached: {usdt(event.loss)} lost today "
        f"(limit {usdt(event.limit)}).\n"
        f"No new entries until {next_utc_day(event.at, zone)}; open positions are being closed."
    )


def profit_target_text(event: DailyProfitTargetReached, zone: ZoneInfo) -> str:
    return (
        f"🎯 Daily profit target reached: {pnl(event.profit)} today (target "
        f"{usdt(event.target)}).\nNo new entries until {next_utc_day(event.at, zone)}; open "
        "positions keep their stop-loss and take-profit."
    )


def drawdown_stopped_text(event: DrawdownStopped) -> str:
    return (
        f"🛑 Drawdown stop: equity {usdt(event.equity)} is {event.drawdown_pct:.1f}% below its "
        f"peak {usdt(event.peak)} (limit {event.limit_pct}%).\nTrading is OFF (send "
        "/start_trading to resume) and the open positions are being closed."
    )


def engine_started_text(event: EngineStarted) -> str:
    trading = "on" if event.trading_enabled else "off (send /start_trading)"
    lines = [
        f"▶️ Engine started · {esc(event.mode)} mode · trading {trading} · "
        f"{count(event.open_positions, 'open position')}"
    ]
    if event.strategy is not None:
        lines += strategy_lines(event.strategy)
    return "\n".join(lines)


def strategy_lines(strategy: Strategy) -> list[str]:
    """What the engine trades with: where from, and the figures that decide a trade."""
    move_sl = strategy.sl_pct / strategy.leverage
    move_tp = strategy.tp_pct / strategy.leverage
    coins = (
        f"whitelist {count(len(strategy.top_coins), 'coin')}" if strategy.top_coins else "any coin"
    )
    lines = [
        f"Strategy: {esc(strategy.source)} · {strategy.leverage}x · "
        f"SL {strategy.sl_pct.normalize():f}% / TP {strategy.tp_pct.normalize():f}% of margin "
        f"(a {move_sl.normalize():f}% / {move_tp.normalize():f}% price move)",
        f"Margin {usdt(strategy.position_size_usdt)} a trade (cap "
        f"{usdt(strategy.max_position_size_usdt)}) · {coins} · "
        f"blacklist {count(len(strategy.excluded_coins), 'coin')}",
    ]
    if strategy.trailing_stop_pct is not None:
        lines.append(_trailing_line(strategy))
    if strategy.take_profits or strategy.targets_from_signal:
        lines.append(_take_profits_line(strategy))
    lines += [f"⚠️ strategy file: {esc(warning)}" for warning in strategy.warnings]
    return lines


def _trailing_line(strategy: Strategy) -> str:
    def of_margin(pct: Decimal) -> str:
        return f"{pct.normalize():f}% of margin (a {(pct / strategy.leverage).normalize():f}% move)"

    distance, activation = strategy.trailing_stop_pct, strategy.trailing_activation_pct
    assert distance is not None
    start = "at once" if activation is None else f"from {of_margin(activation)}"
    return f"Trailing stop {of_margin(distance)}, active {start}"


def _take_profits_line(strategy: Strategy) -> str:
    levels = ", ".join(
        f"{share.size.normalize():f}% at {share.pct.normalize():f}%"
        for share in strategy.take_profits
    )
    line = f"Take-profits {levels} of margin" if levels else "Take-profits"
    if strategy.targets_from_signal:
        line += " at the signal's targets" if not levels else " (or the signal's targets)"
    if strategy.breakeven_after_tp is not None:
        line += f" · SL to breakeven after TP{strategy.breakeven_after_tp}"
    return line


def refused_text(reason: str) -> str:
    return f"⛔ Not trading: {esc(reason)}"


def engine_stopped_text(event: EngineStopped) -> str:
    return "⏹ Engine stopped. Open positions keep their stop-loss and take-profit."


def signal_log_silent_text(event: SignalLogSilent, zone: ZoneInfo) -> str:
    last = f"the last was written {clock(event.last_at, zone)}" if event.last_at else "none yet"
    return (
        f"🔕 No new signal for {event.minutes} min ({last}): is the signal generator "
        "running? Open positions keep their stop-loss and take-profit."
    )


def signal_log_resumed_text(event: SignalLogResumed) -> str:
    minutes = int(event.quiet_for.total_seconds() // 60)
    return f"🔔 Signals are coming in again, after {minutes} min of silence."


def signal_log_missing_text(event: SignalLogMissing) -> str:
    return (
        f"⚠️ The signal log {esc(event.path)} is not there: waiting for the generator to "
        "create it (check SIGNALS_PATH)."
    )


def venue_unreachable_text(event: VenueUnreachable) -> str:
    held = (
        "Paper positions' stop-loss and take-profit are checked on Bybit's prices once they come in"
        if event.simulated
        else "Open positions keep their stop-loss and take-profit on Bybit"
    )
    return (
        f"⚠️ Bybit does not answer ({esc(event.detail)}): nothing is traded until it does; "
        f"asking again. {held}; /status answers meanwhile."
    )


def venue_reachable_text(event: VenueReachable) -> str:
    return "✅ Bybit answers: starting to trade."


def venue_banned_text(event: VenueBanned, zone: ZoneInfo) -> str:
    return (
        f"🚫 Bybit banned this IP for too many requests ({esc(event.detail)}).\n"
        f"No call to Bybit until {clock(event.until, zone)}: signals meanwhile are not traded; "
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


def question_text(event: ConfirmationRequested, zone: ZoneInfo) -> str:
    """The question of confirmation mode, with what there is to approve: the size, the
    entry at the market now, the stop-loss and take-profit, and the deadline."""
    quote, tick = event.quote, event.quote.tick_size
    seconds = max(0, round((event.expires_at - event.asked_at).total_seconds()))
    return "\n".join(
        [
            f"❓ Trade this signal? {_signal_line(event.signal)}",
            f"qty {qty(quote.qty)} at ≈ {price(quote.price, tick)} · margin "
            f"{usdt(quote.margin)} · {quote.leverage}x",
            f"SL {price(quote.stop_loss, tick)} · TP {price(quote.take_profit, tick)}",
            f"Answer within {seconds} s (by {clock(event.expires_at, zone)}); "
            "no answer means no trade.",
        ]
    )


RESOLUTION_TEXT = {
    "approved": "✅ Approved: opening.",
    "declined": "❌ Skipped.",
    "expired": "⌛ Expired: not traded.",
}


def resolved_text(symbol: str, signal: Signal | None, status: str, detail: str = "") -> str:
    head = f"Signal {_signal_line(signal)}" if signal else f"Signal <b>{esc(symbol)}</b>"
    if detail.startswith("rejected:"):
        reason = detail.removeprefix("rejected:").replace("_", " ")
        return f"{head}\n⛔ Approved, but not opened: {esc(reason)}."
    return f"{head}\n{RESOLUTION_TEXT.get(status, esc(status))}"
