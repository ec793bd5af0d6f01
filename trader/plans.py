"""A position's plan on the venue after its entry filled: the strategy's trailing stop and
several take-profits, placed for an entry just filled (``place``), or, for an entry that
reconciliation recovers after a crash between its fill and storing it, found on the venue
and adopted, the rest placed (``restore``): the crash may have come before, between or after
those calls, and nothing is sent twice.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal

from trader import take_profits, trailing
from trader.exchange.base import Exchange, VenuePosition
from trader.models import Position, Signal, TakeProfitLevel
from trader.orders import short
from trader.strategy import Strategy

log = logging.getLogger(__name__)


async def place(
    exchange: Exchange, strategy: Strategy, position: Position, signal: Signal | None, tick: Decimal
) -> tuple[Position, list[str]]:
    """Put the strategy's trailing stop, then its take-profits, on the venue for a position
    just filled (planned from its fill): the position as the venue holds it, and what could
    not be set, one line each (it keeps its stop-loss)."""
    position, trailing_unset = await trailing.place(exchange, strategy, position, tick)
    position, tps_unset = await _take_profits(exchange, strategy, position, signal, held=())
    return position, [why for why in (trailing_unset, tps_unset) if why is not None]


async def restore(
    exchange: Exchange,
    strategy: Strategy,
    position: Position,
    signal: Signal | None,
    venue: VenuePosition | None,
    tick: Decimal,
) -> tuple[Position, list[str]]:
    """The plan of a recovered entry: what the venue holds of it is adopted, what it lacks is
    placed. What the venue holds and the plan does not have (set by hand on Bybit, or for
    another signal) is left alone and said, with nothing placed beside it."""
    if venue is None or venue.qty != position.qty:
        # Not the position the fill made any more (a take-profit or the stop-loss filled
        # while the bot was down): a plan made for the fill could sell a share twice.
        now = "none" if venue is None else str(venue.qty)
        return position, [
            f"Bybit holds {now} of the {position.qty} filled: its trailing stop and "
            "take-profits from the strategy are not placed; check them on Bybit"
        ]
    said: list[str] = []
    wanted = trailing.plan(
        strategy, position.side, position.entry_price, leverage=position.leverage, tick=tick
    )
    found = venue.trailing_stop
    if wanted is not None and found is None:
        position, unset = await trailing.place(exchange, strategy, position, tick)
        said += [unset] if unset is not None else []
    elif wanted is not None and found == wanted.distance:
        position = replace(position, trailing=wanted)  # set before the crash
    elif found is not None:
        said.append(f"Bybit holds a trailing stop of {found} the bot did not set: left as it is")
    if take_profits.uses_plan(strategy):
        try:
            held = await exchange.take_profit_orders(position.symbol)
        except Exception as exc:
            why = short(str(exc) or type(exc).__name__)
            return position, [*said, f"take-profits not checked ({why}): check them on Bybit"]
        position, unset = await _take_profits(exchange, strategy, position, signal, held=held)
        said += [unset] if unset is not None else []
    return position, said


async def _take_profits(
    exchange: Exchange,
    strategy: Strategy,
    position: Position,
    signal: Signal | None,
    *,
    held: tuple[TakeProfitLevel, ...] | list[TakeProfitLevel],
) -> tuple[Position, str | None]:
    """The strategy's several take-profits on the venue, planned from the fill; those in
    ``held`` are there already and not placed again."""
    if not take_profits.uses_plan(strategy):
        return position, None
    try:
        instrument = await exchange.instrument(position.symbol)
    except Exception as exc:
        why = short(str(exc) or type(exc).__name__)
        # None is on the venue: none is shown, nor adopted by paper after a restart.
        bare = take_profits.holding(position, None)
        return bare, f"take-profits not set ({why}); the position keeps its stop-loss"
    plan = take_profits.make_plan(
        strategy,
        position.side,
        position.entry_price,
        position.qty,
        leverage=position.leverage,
        instrument=instrument,
        signal=signal,
    )
    if plan is None or not held:
        return await take_profits.place(exchange, plan, position)
    planned = {level.price for level in plan.levels}
    if any(level.price not in planned for level in held):
        levels = ", ".join(f"{level.price} × {level.qty}" for level in held)
        return position, f"Bybit holds take-profits the bot did not plan ({levels}): check them"
    there = {level.price for level in held}
    missing = tuple(level for level in plan.levels if level.price not in there)
    placed, unset = await take_profits.place(exchange, replace(plan, levels=missing), position)
    if placed.take_profits is not None:
        there |= {level.price for level in placed.take_profits.levels}
    kept = tuple(level for level in plan.levels if level.price in there)
    log.info("%s: %d take-profits were on the venue already", position.symbol, len(held))
    return take_profits.holding(position, plan.with_levels(kept)), unset
