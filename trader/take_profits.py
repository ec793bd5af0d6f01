"""Several take-profits and the breakeven move (``take_profits``, ``targets_from_signal``,
``breakeven_after_tp``): the strategy keys, the plan a position gets (pure arithmetic, one
for live, paper and replay), putting it on the venue after the entry fills, and the breakeven
move once TP N has filled.

A plan's TP prices are on the tick, strictly beyond the entry and increasing away from it;
its qtys are multiples of ``qtyStep`` summing to the position's (the last takes the
remainder; one below ``minOrderQty`` merges into the next). The breakeven price is where
closing the rest is flat net of the entry's and the exit's taker fees on their notional.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from trader.errors import ConfigError
from trader.models import (
    Instrument,
    Position,
    Side,
    Signal,
    TakeProfitLevel,
    TakeProfitPlan,
)
from trader.orders import short

if TYPE_CHECKING:
    from trader.exchange.base import Exchange
    from trader.strategy import Strategy

log = logging.getLogger(__name__)

MAX_LEVELS = 20  # Bybit holds at most 20 partial take-profits on a position
HUNDRED = Decimal(100)
EVEN_SPLIT = (HUNDRED / 2, HUNDRED / 2)  # targets_from_signal without take_profits


@dataclass(frozen=True, slots=True)
class Share:
    """One entry of ``take_profits``: at ``pct`` percent of margin, ``size`` percent of the
    position."""

    pct: Decimal
    size: Decimal


# --- the strategy keys --------------------------------------------------------------------

KEYS = ("take_profits", "targets_from_signal", "breakeven_after_tp")


def parse_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of several take-profits the strategy file sets, validated (absent: none)."""
    found: dict[str, Any] = {}
    shares: tuple[Share, ...] = ()
    if data.get("take_profits") is not None:
        shares = _shares(data["take_profits"])
        found["take_profits"] = shares
    targets = data.get("targets_from_signal")
    if targets is not None:
        if not isinstance(targets, bool):
            raise ConfigError("targets_from_signal: must be true or false")
        if targets and shares and len(shares) != 2:
            raise ConfigError(
                "targets_from_signal: take_profits must then have 2 levels, one per target"
            )
        found["targets_from_signal"] = targets
    after = data.get("breakeven_after_tp")
    if after is not None:
        count = len(shares) or (2 if targets else 0)
        if isinstance(after, bool) or not isinstance(after, int | Decimal) or after % 1 != 0:
            raise ConfigError("breakeven_after_tp: must be a whole number")
        if not 1 <= after < count:
            raise ConfigError(
                f"breakeven_after_tp: must be from 1 to {count - 1} (one less than the TPs)"
                if count > 1
                else "breakeven_after_tp: needs at least 2 take_profits (or targets_from_signal)"
            )
        found["breakeven_after_tp"] = int(after)
    return found


def _shares(raw: object) -> tuple[Share, ...]:
    shape = 'take_profits: must be a list of {"pct": P, "size": S}'
    if not isinstance(raw, list) or not raw:
        raise ConfigError(shape)
    if len(raw) > MAX_LEVELS:
        raise ConfigError(f"take_profits: at most {MAX_LEVELS} levels")
    shares = []
    for item in raw:
        if not isinstance(item, Mapping) or set(item) != {"pct", "size"}:
            raise ConfigError(shape)
        values = []
        for key in ("pct", "size"):
            value = item[key]
            if isinstance(value, bool) or not isinstance(value, int | Decimal):
                raise ConfigError(f"take_profits: {key} must be a number")
            if not Decimal(value).is_finite() or value <= 0:
                raise ConfigError(f"take_profits: {key} must be positive")
            values.append(Decimal(value))
        shares.append(Share(values[0], values[1]))
    if any(later.pct <= earlier.pct for earlier, later in itertools.pairwise(shares)):
        raise ConfigError("take_profits: pct must increase from one level to the next")
    if sum((share.size for share in shares), Decimal(0)) != HUNDRED:
        raise ConfigError("take_profits: sizes must add up to 100")
    return tuple(shares)


def uses_plan(strategy: Strategy) -> bool:
    """Whether positions get several take-profits (after the fill) instead of one on the
    order."""
    return bool(strategy.take_profits) or strategy.targets_from_signal


# --- the plan's arithmetic ----------------------------------------------------------------


def _to_tick(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (price / tick).to_integral_value(rounding=rounding) * tick


def ladder(side: Side, entry: Decimal, wanted: Sequence[Decimal], tick: Decimal) -> list[Decimal]:
    """TP prices from ``wanted`` (nearest the entry first): on the tick, strictly beyond the
    entry and each strictly beyond the one before (moved a tick further when rounding makes
    them meet). A short's level that would fall to zero is left out."""
    prices: list[Decimal] = []
    if side is Side.BUY:
        edge = _to_tick(entry, tick, ROUND_FLOOR)  # the first price must be above it
        for price in wanted:
            edge = max(_to_tick(price, tick, ROUND_HALF_UP), edge + tick)
            prices.append(edge)
        return prices
    edge = _to_tick(entry, tick, ROUND_CEILING)
    for price in wanted:
        edge = min(_to_tick(price, tick, ROUND_HALF_UP), edge - tick)
        if edge < tick:
            break
        prices.append(edge)
    return prices


def level_prices(
    side: Side, entry: Decimal, pcts: Sequence[Decimal], *, leverage: int, tick: Decimal
) -> list[Decimal]:
    """TP prices at ``pcts`` percent of margin (the price move is pct ÷ leverage)."""
    moves = [pct / HUNDRED / leverage for pct in pcts]
    return ladder(side, entry, [entry * (1 + side.sign * move) for move in moves], tick)


def signal_targets(side: Side, entry: Decimal, signal: Signal | None) -> list[Decimal]:
    """The signal's ``target_min`` / ``target_max`` on the winning side of ``entry``, the
    nearer first."""
    if signal is None:
        return []
    found = {t for t in (signal.target_min, signal.target_max) if t is not None}
    usable = [t for t in found if side.sign * (t - entry) > 0]
    return sorted(usable, key=lambda t: side.sign * (t - entry))


def split_qty(
    qty: Decimal, sizes: Sequence[Decimal], *, step: Decimal, min_qty: Decimal
) -> list[Decimal]:
    """Each level's qty for ``sizes`` (percents summing to 100): floored to ``step`` so that
    the running total never exceeds its share, the last taking the remainder. A level whose
    qty would be below ``min_qty`` gets 0 and its qty goes to the next (the last one's to
    the level before it). The qtys add up to ``qty``."""
    total, cumulative, qtys = sum(sizes, Decimal(0)), Decimal(0), []
    done = Decimal(0)
    for number, size in enumerate(sizes, 1):
        cumulative += size
        upto = qty if number == len(sizes) else _to_tick(qty * cumulative / total, step, ROUND_DOWN)
        qtys.append(max(upto - done, Decimal(0)))
        done = max(done, upto)
    carry = Decimal(0)
    for index in range(len(qtys) - 1):
        qtys[index] += carry
        carry = Decimal(0)
        if qtys[index] < min_qty:
            carry, qtys[index] = qtys[index], Decimal(0)
    qtys[-1] += carry
    if qtys[-1] < min_qty:
        kept = [index for index, part in enumerate(qtys[:-1]) if part > 0]
        if kept:
            qtys[kept[-1]] += qtys[-1]
            qtys[-1] = Decimal(0)
    return qtys


def breakeven_price(side: Side, entry: Decimal, *, fee_rate: Decimal, tick: Decimal) -> Decimal:
    """Where closing (any qty of) the position is flat net of the taker fees of its entry and
    its exit, rounded to the tick on the side that does not lose: a long's exit at P nets
    q·(P − E) − f·q·E − f·q·P ≥ 0, so P ≥ E·(1 + f) ÷ (1 − f); a short's P ≤ E·(1 − f) ÷ (1 + f)."""
    if side is Side.BUY:
        return _to_tick(entry * (1 + fee_rate) / (1 - fee_rate), tick, ROUND_CEILING)
    return max(_to_tick(entry * (1 - fee_rate) / (1 + fee_rate), tick, ROUND_FLOOR), tick)


def make_plan(
    strategy: Strategy,
    side: Side,
    entry: Decimal,
    qty: Decimal,
    *,
    leverage: int,
    instrument: Instrument,
    signal: Signal | None = None,
) -> TakeProfitPlan | None:
    """The take-profits ``strategy`` gives a position of ``qty`` entered at ``entry``; None
    when it uses one take-profit (``parameters.tp``, on the order).

    ``targets_from_signal``: the signal's usable targets are the TPs (two: sized from
    ``take_profits`` or 50/50; one: all of it); none usable: the ``take_profits`` levels, or
    one at ``parameters.tp``."""
    if not uses_plan(strategy):
        return None
    tick = instrument.tick_size
    shares = strategy.take_profits or (Share(strategy.tp_pct, HUNDRED),)
    targets = signal_targets(side, entry, signal) if strategy.targets_from_signal else []
    if targets:
        prices = ladder(side, entry, targets, tick)
        two = tuple(share.size for share in strategy.take_profits) or EVEN_SPLIT
        sizes: Sequence[Decimal] = two if len(prices) == 2 else (HUNDRED,)
    else:
        pcts = [share.pct for share in shares]
        prices = level_prices(side, entry, pcts, leverage=leverage, tick=tick)
        sizes = [share.size for share in shares]
    if not prices:  # a short's levels all fell to zero: one tick above it, all of it
        prices, sizes = [tick], (HUNDRED,)
    if len(prices) < len(sizes):  # the furthest levels could not be placed: the last takes them
        sizes = [*sizes[: len(prices) - 1], sum(sizes[len(prices) - 1 :], Decimal(0))]
    qtys = split_qty(qty, sizes, step=instrument.qty_step, min_qty=instrument.min_order_qty)
    levels = tuple(
        TakeProfitLevel(price, part) for price, part in zip(prices, qtys, strict=True) if part > 0
    )
    after = strategy.breakeven_after_tp
    if after is None or after >= len(levels):
        return TakeProfitPlan(levels, qty=qty)
    price = breakeven_price(side, entry, fee_rate=strategy.fee_rate, tick=tick)
    trigger = levels[after - 1].price
    if (trigger <= price) if side is Side.BUY else (trigger >= price):
        # TP N is no further out than the fees: the stop could not move there once it has
        # filled (the venue refuses a stop beyond the price). No breakeven rule.
        log.warning(
            "TP%d at %s is not beyond breakeven %s: no breakeven move", after, trigger, price
        )
        return TakeProfitPlan(levels, qty=qty)
    return TakeProfitPlan(levels, qty=qty, breakeven_after=after, breakeven_price=price)


# --- on the venue ---------------------------------------------------------------------------


async def place(
    exchange: Exchange, plan: TakeProfitPlan | None, position: Position
) -> tuple[Position, str | None]:
    """Put the plan's take-profits on the venue for a position just filled, one partial
    take-profit each: the position with the TPs the venue took, and why not all of them
    (it keeps its stop-loss)."""
    if plan is None:
        return position, None
    placed: list[TakeProfitLevel] = []
    problem = None
    for number, level in enumerate(plan.levels, 1):
        try:
            await exchange.set_take_profit(position.symbol, level.price, level.qty)
        except Exception as exc:  # the entry stands whatever happens to its take-profits
            log.warning("setting TP%d of %s failed: %s", number, position.symbol, exc)
            why = short(str(exc) or type(exc).__name__)
            problem = f"take-profit {number} not set ({why}); the position keeps its stop-loss"
            break
        placed.append(level)
    # TP N not set cannot fill: its breakeven rule goes. Kept when TP N stands and only later
    # ones were refused: their share is open with no TP, which is when it matters. None set
    # at all: said as none.
    return holding(position, plan.with_levels(tuple(placed))), problem


def holding(position: Position, plan: TakeProfitPlan | None) -> Position:
    """``position`` with ``plan`` (None, or one with no level left: its stop-loss only) and
    its take-profit shown at the furthest level."""
    if plan is None or not plan.levels:
        return replace(position, take_profits=None, take_profit=Decimal(0))
    return replace(position, take_profits=plan, take_profit=plan.levels[-1].price)


def level_number(plan: TakeProfitPlan | None, trigger: Decimal | None) -> int | None:
    """Which of the plan's take-profits (1 = TP1) is at ``trigger``; None if none is."""
    if plan is None or trigger is None:
        return None
    prices = [level.price for level in plan.levels]
    return prices.index(trigger) + 1 if trigger in prices else None


def shrunk(plan: TakeProfitPlan, remaining: Decimal) -> TakeProfitPlan:
    """The plan after the position shrank to ``remaining`` otherwise than by a take-profit
    (auto-deleveraging, a partial liquidation, a part closed in Bybit's app), as Bybit cuts
    partial take-profits that cover more than the position: the earliest unfilled first, one
    cut to nothing gone. Those filled are left as they were (their count is unchanged); a
    breakeven rule whose TP is gone goes with it, one after a TP kept follows it."""
    done = plan.filled()
    excess = sum((level.qty for level in plan.levels[done:]), Decimal(0)) - remaining
    if excess <= 0:
        return plan
    levels = list(plan.levels[:done])
    for level in plan.levels[done:]:
        cut = min(excess, level.qty)
        excess -= cut
        if cut < level.qty:
            levels.append(TakeProfitLevel(level.price, level.qty - cut))
    return plan.with_levels(tuple(levels))


def breakeven_due(position: Position) -> Decimal | None:
    """The breakeven price the stop-loss of ``position`` must move to now (its TP N has
    filled and it has not moved yet); None otherwise."""
    plan = position.take_profits
    if plan is None or plan.breakeven_after is None or plan.breakeven_price is None:
        return None
    if plan.breakeven_moved or plan.filled() < plan.breakeven_after:
        return None
    return plan.breakeven_price


async def move_to_breakeven(
    exchange: Exchange, position: Position, *, held_stop: Decimal | None = None
) -> tuple[Position, str | None]:
    """Move the stop-loss of ``position`` to its breakeven price when due (the venue first:
    what is stored is what it holds): the position as it is now, and why the move failed
    (it keeps its stop-loss). ``held_stop``: the stop-loss the venue holds, where known; at
    the breakeven price already (a crash between the move and storing it), none is sent."""
    price = breakeven_due(position)
    if price is None or position.take_profits is None:
        return position, None
    try:
        if held_stop != price:
            await exchange.set_stop_loss(position.symbol, price)
    except Exception as exc:
        log.warning("moving the stop-loss of %s to breakeven failed: %s", position.symbol, exc)
        why = short(str(exc) or type(exc).__name__)
        stays = f"it stays at {position.stop_loss}"
        return position, f"stop-loss not moved to breakeven ({why}); {stays}"
    plan = replace(position.take_profits, breakeven_moved=True)
    return replace(position, stop_loss=price, take_profits=plan), None
