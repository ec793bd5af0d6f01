"""Trade plans in replay (SPEC "Trade plans in replay"): the worst-case exits of a position
with several take-profits, breakeven or a trailing stop over a price path known only by its
extremes, booked as one trade through the engine's own ``pnl.close_part``, and the rule said
in the report's "Exit rule:" line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from trader import take_profits
from trader.models import (
    ClosedTrade,
    CloseReason,
    Fill,
    Position,
    Side,
    TakeProfitPlan,
    TrailingStop,
)
from trader.pnl import close_part, taker_fee
from trader.strategy import Strategy


def exit_rules(strategy: Strategy) -> tuple[str, ...]:
    """The worst-case rules replay applies for ``strategy``'s plan, as the report says them."""
    distance = strategy.trailing_stop_pct
    if take_profits.uses_plan(strategy):
        return (replay_rule(strategy),)
    if distance is None:
        return ()
    activation = strategy.trailing_activation_pct
    head = f"trailing stop {_of_margin(distance, strategy)}"
    never_worse = "never worse than the worst price reached"
    if activation is None:
        return (
            f"{head}, active at once; worst case: a position whose SL was not reached exits "
            f"at the entry less the trailing distance ({never_worse})",
        )
    return (
        f"{head}, active from {_of_margin(activation, strategy)}; worst case: a position "
        "whose activation level was reached before its TP's, and its SL not, exits at the "
        f"activation level less the trailing distance ({never_worse})",
    )


def _of_margin(pct: Decimal, strategy: Strategy) -> str:
    move = pct / strategy.leverage
    return f"{pct.normalize():f}% of margin ({move.normalize():f}% price move)"


def replay_rule(strategy: Strategy) -> str:
    """The worst-case rule replay applies to several take-profits, as the report says it."""
    if strategy.take_profits:
        levels = ", ".join(
            f"{share.size.normalize():f}% at {share.pct.normalize():f}% of margin"
            for share in strategy.take_profits
        )
    else:
        levels = f"all at {strategy.tp_pct.normalize():f}% of margin"
    if strategy.targets_from_signal:
        levels = f"the signal's targets (else {levels})"
    rest = "the final price"
    if strategy.breakeven_after_tp is not None:
        n = strategy.breakeven_after_tp
        rest += f", or the breakeven price once TP{n} was reached"
    if strategy.trailing_stop_pct is not None:
        rest += (
            ", or the trailing stop's activation level less its distance once it was reached"
            " (of a breakeven and a trailing level, the one the price meets first on its way"
            " back)"
        )
    return (
        f"take-profits {levels}; worst case: SL reached: all at the SL; else each TP reached "
        f"fills its share and the rest exits at {rest}"
    )


Part = tuple[Decimal, Decimal, CloseReason]  # qty, exit price, why


def path_parts(
    side: Side,
    plan: TakeProfitPlan,
    *,
    high: Decimal,
    low: Decimal,
    final: Decimal,
    stop: Decimal,
    trailing: TrailingStop | None = None,
) -> list[Part]:
    """The exits of a position with ``plan`` over a price path known only by its extremes,
    in the trader's worst case (SPEC "Trade plans in replay"): the stop-loss reached, all of
    it at the stop-loss; else each TP reached fills its qty, and the rest exits at the
    breakeven price once TP N was reached, at the activation level less the distance once a
    trailing stop's activation was reached (of the two, the one the price meets first on its
    way back), or else at ``final``."""
    adverse, favourable = (low, high) if side is Side.BUY else (high, low)
    if side.sign * (adverse - stop) <= 0:
        return [(plan.qty, stop, CloseReason.STOP_LOSS)]
    reached = [lvl for lvl in plan.levels if side.sign * (favourable - lvl.price) >= 0]
    parts: list[Part] = [(lvl.qty, lvl.price, CloseReason.TAKE_PROFIT) for lvl in reached]
    rest = plan.qty - sum((lvl.qty for lvl in reached), Decimal(0))
    if rest > 0:
        stops: list[tuple[Decimal, CloseReason]] = []
        after, price = plan.breakeven_after, plan.breakeven_price
        if after is not None and price is not None and len(reached) >= after:
            stops.append((price, CloseReason.STOP_LOSS))
        active = None if trailing is None else trailing.active_price
        if trailing is not None and active is not None and side.sign * (favourable - active) >= 0:
            stops.append((active - side.sign * trailing.distance, CloseReason.TRAILING_STOP))
        if stops:  # the price coming back meets the nearer one first: a long's highest
            level, why = max(stops, key=lambda stop_at: side.sign * stop_at[0])
            parts.append((rest, level, why))
        else:
            parts.append((rest, final, CloseReason.TTL))
    return parts


def book_parts(
    position: Position, parts: Sequence[Part], *, fee_rate: Decimal, at: datetime
) -> ClosedTrade:
    """One trade for a position that exited in ``parts``: each booked as the engine books a
    part (``pnl.close_part``), the trade their sum (qty, fees and PnL; the exit price their
    qty-weighted average; the reason the last part's)."""
    trades: list[ClosedTrade] = []
    held: Position | None = position
    for qty, price, reason in parts:
        assert held is not None
        fee = taker_fee(qty, price, fee_rate)
        fill = Fill("", position.symbol, position.side.opposite, qty, price, fee, at)
        trade, held = close_part(held, fill, reason)
        trades.append(trade)
    if len(trades) == 1:
        return trades[0]

    def total(values: Sequence[Decimal]) -> Decimal:
        return sum(values, Decimal(0))

    exit_value = total([t.qty * t.exit_price for t in trades])
    return replace(
        trades[-1],
        qty=position.qty,
        margin=position.margin,
        entry_fee=total([t.entry_fee for t in trades]),
        exit_fee=total([t.exit_fee for t in trades]),
        gross_pnl=total([t.gross_pnl for t in trades]),
        net_pnl=total([t.net_pnl for t in trades]),
        exit_price=exit_value / position.qty,
    )
