"""Reconciliation: the venue's positions against the positions the database records.

Run by the engine at start-up and whenever the venue's push stream comes back after a gap.
This module decides what differs and what a repaired record looks like; the engine applies
it under its symbol locks. Every difference becomes one plain line for the chat report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from trader import rules, sizing, take_profits
from trader.exchange.base import VenuePosition
from trader.models import ClosedTrade, Fill, Position, Signal, TakeProfitLevel
from trader.pnl import notional, open_position
from trader.rules import Limits
from trader.strategy import Strategy

ADOPTED_PREFIX = "adopted-"
STOP_ALARM = "🚨"  # the lines said again at every check until what they name is fixed
# A position the bot did not open has no signal and so no TTL: it is never closed by time.
NO_EXPIRY = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Diff:
    vanished: list[Position] = field(default_factory=list)  # recorded, not on the venue
    unknown: list[VenuePosition] = field(default_factory=list)  # on the venue, not recorded
    mismatched: list[tuple[Position, VenuePosition]] = field(default_factory=list)


def diff(
    recorded: Mapping[str, Position], venue: Mapping[str, VenuePosition], busy: Set[str]
) -> Diff:
    """What differs, leaving out ``busy`` symbols (an order for them is in flight)."""
    result = Diff()
    for symbol, position in recorded.items():
        if symbol in busy:
            continue
        found = venue.get(symbol)
        if found is None:
            result.vanished.append(position)
        elif (found.side, found.qty) != (position.side, position.qty):
            result.mismatched.append((position, found))
    for symbol, found in venue.items():
        if symbol not in recorded and symbol not in busy:
            result.unknown.append(found)
    return result


def recovered_entry(
    signal_id: str,
    fill: Fill,
    *,
    signal: Signal | None,
    venue: VenuePosition | None,
    strategy: Strategy,
    limits: Limits,
    tick: Decimal,
) -> Position:
    """The position of an entry a restart interrupted and the venue filled: SL/TP and
    leverage as the venue holds them, else as the entry would have set them."""
    leverage = int(venue.leverage) if venue is not None and venue.leverage > 0 else limits.leverage
    if venue is not None:
        stop, take = venue.stop_loss or Decimal(0), venue.take_profit or Decimal(0)
    else:
        stop, take = sizing.protective_prices(
            fill.side,
            fill.price,
            sl_pct=strategy.sl_pct,
            tp_pct=strategy.tp_pct,
            leverage=leverage,
            tick=tick,
        )
    expires_at = (
        signal.timestamp + rules.signal_ttl(signal, strategy) if signal is not None else NO_EXPIRY
    )
    return open_position(
        signal_id,
        fill,
        leverage=leverage,
        stop_loss=stop,
        take_profit=take,
        expires_at=expires_at,
    )


def adopted(found: VenuePosition, now: datetime) -> Position:
    """A position the venue holds and the bot never opened, taken over as it is: its entry
    fee is unknown (the venue's closed PnL will include it), and it has no TTL."""
    assert found.side is not None
    leverage = max(1, int(found.leverage))
    opened_at = found.opened_at or now
    return Position(
        signal_id=f"{ADOPTED_PREFIX}{found.symbol}-{int(opened_at.timestamp() * 1000)}",
        symbol=found.symbol,
        side=found.side,
        qty=found.qty,
        entry_price=found.entry_price,
        leverage=leverage,
        margin=notional(found.qty, found.entry_price) / leverage,
        stop_loss=found.stop_loss or Decimal(0),
        take_profit=found.take_profit or Decimal(0),
        entry_fee=Decimal(0),
        opened_at=opened_at,
        expires_at=NO_EXPIRY,
    )


# --- the lines of the report ---------------------------------------------------------------


def _what(position: Position | VenuePosition) -> str:
    side = position.side.label.lower() if position.side is not None else "flat"
    return f"{position.symbol} {side} {position.qty} @ {position.entry_price}"


def _protection(stop: Decimal | None, take: Decimal | None) -> str:
    if not stop:
        return "⚠️ it has NO stop-loss on Bybit"
    return f"SL {stop} · TP {take}" if take else f"SL {stop} · no TP"


def said_recovered(position: Position) -> str:
    return (
        f"{_what(position)}: its entry was filled while the bot was not watching; now "
        f"tracked ({_protection(position.stop_loss, position.take_profit)})"
    )


def said_never_placed(symbol: str, link_id: str) -> str:
    return f"{symbol}: order {link_id} is not on Bybit; nothing was traded"


def said_unreachable(error: str) -> str:
    return f"could not ask Bybit ({error}); will try again"


def said_unchecked(symbol: str, link_id: str, error: str) -> str:
    return f"{symbol}: order {link_id} could not be looked up ({error}); will look again"


def said_closed(trades: Sequence[ClosedTrade]) -> str:
    """Trades booked for a position closed on the venue while nobody watched (its parts
    first, if it was closed in parts); "" when they were all booked before."""
    if not trades:
        return ""
    last = trades[-1]
    how = " and ".join(dict.fromkeys(t.reason.value for t in trades))
    net = sum((t.net_pnl for t in trades), Decimal(0))
    parts = f" in {len(trades)} parts" if len(trades) > 1 else ""
    return (
        f"{last.symbol} {last.side.label.lower()} was closed on Bybit ({how}){parts} "
        "while the bot was not watching: recorded with Bybit's closed PnL "
        f"{net:+.2f} USDT"
    )


def said_missing(position: Position) -> str:
    return (
        f"{_what(position)} is no longer on Bybit, and its closing fill is not visible "
        "yet; it stays listed until it is"
    )


def said_adopted(position: Position) -> str:
    return (
        f"{_what(position)} is on Bybit but was not opened by the bot: adopted, no TTL "
        f"({_protection(position.stop_loss, position.take_profit)})"
    )


def said_shrunk(position: Position, trades: Sequence[ClosedTrade]) -> str:
    how = " and ".join(dict.fromkeys(t.reason.value for t in trades)) or "unseen"
    return (
        f"{position.symbol}: Bybit reduced the position ({how}) while the bot was not "
        f"watching; {position.qty} stays open, the part closed recorded with Bybit's PnL"
    )


def said_stop_restored(position: Position) -> str:
    return (
        f"{_what(position)}: its stop-loss was missing on Bybit; put back at {position.stop_loss}"
    )


def said_stop_not_restored(position: Position, error: str) -> str:
    return (
        f"{STOP_ALARM} {_what(position)} has NO stop-loss on Bybit, and putting it back at "
        f"{position.stop_loss} failed ({error}). Trying again every minute: set it on Bybit "
        "or close the position"
    )


def said_no_stop(position: Position) -> str:
    return (
        f"{STOP_ALARM} {_what(position)} has NO stop-loss on Bybit and the bot has none "
        "recorded to put back: set one on Bybit or close the position"
    )


def said_stop_crossed(position: Position, last: Decimal) -> str:
    return (
        f"{_what(position)} had no stop-loss on Bybit and the price ({last}) is past its "
        f"stop {position.stop_loss}: closing it at market"
    )


def news(findings: Sequence[str], before: Sequence[str]) -> list[str]:
    """What a periodic check says: findings it did not say last time, and every alarm
    again (a position without a stop-loss is said until it is fixed)."""
    return [f for f in findings if f not in before or f.startswith(STOP_ALARM)]


def said_mismatched(position: Position, found: VenuePosition) -> str:
    return (
        f"{position.symbol}: the bot recorded {_what(position)}, Bybit holds {_what(found)}; "
        "left as it is, check it on Bybit"
    )


def without_gone_take_profits(
    position: Position, held: Sequence[TakeProfitLevel], *, only: Decimal | None = None
) -> tuple[Position, list[tuple[int, TakeProfitLevel]]]:
    """``position`` with the take-profits of its plan that have not filled and the venue no
    longer holds (cancelled there by hand) left out, and those gone, each with its number.
    A level is held when the venue has a take-profit at its price, whatever its size (the
    venue cuts a TP's size when the position shrinks otherwise). ``only``: the price of the
    one take-profit the venue said was cancelled; no other can go. Only unfilled levels go:
    the count of those filled is unchanged. A breakeven rule whose TP is gone goes with it;
    one after a TP still there keeps following that TP."""
    plan = position.take_profits
    if plan is None:
        return position, []
    done = plan.filled()
    prices = {level.price for level in held}
    gone = [
        (number, level)
        for number, level in enumerate(plan.levels, 1)
        if number > done and level.price not in prices and (only is None or level.price == only)
    ]
    if not gone:
        return position, []
    numbers = {number for number, _ in gone}
    levels = tuple(lvl for n, lvl in enumerate(plan.levels, 1) if n not in numbers)
    return take_profits.holding(position, plan.with_levels(levels)), gone


def said_take_profits_gone(
    position: Position, gone: Sequence[tuple[int, TakeProfitLevel]], *, breakeven_dropped: bool
) -> str:
    which = ", ".join(f"TP{number} {level.price} × {level.qty}" for number, level in gone)
    verb = "is" if len(gone) == 1 else "are"
    said = (
        f"{_what(position)}: {which} {verb} no longer on Bybit (cancelled there?); not placed again"
    )
    if breakeven_dropped:
        said += ", and the stop-loss will not move to breakeven"
    return said
