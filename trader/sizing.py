"""Sizing: a trade's margin, qty and protective prices. Pure functions, ``Decimal``.

Qty is rounded down to the instrument's ``qtyStep`` (an order never exceeds what was asked),
prices to its ``tickSize``. The engine and replay call these same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from trader.models import Instrument, Side
from trader.rules import Limits
from trader.strategy import Strategy


def entry_margin(strategy: Strategy, limits: Limits) -> Decimal:
    """Margin of one trade as far as it is known before its price: ``position_size_usdt`` (or
    ``/limits margin``) capped by ``max_position_size_usdt``; with sizing from the balance,
    the cap (the most it can be: ``trade_margin`` says what it is)."""
    if strategy.position_size_pct is not None or strategy.risk_per_trade_pct is not None:
        return limits.max_position_size_usdt
    return min(limits.margin_usdt, limits.max_position_size_usdt)


def trade_margin(
    strategy: Strategy,
    limits: Limits,
    *,
    balance: Decimal | None,
    price: Decimal,
    stop: Decimal,
    leverage: int,
) -> Decimal | str:
    """The margin of one trade entered at ``price`` with its stop-loss at ``stop``, always
    capped by ``max_position_size_usdt``:

    - ``position_size_pct``: that percent of the balance;
    - ``risk_per_trade_pct``: the margin of the qty whose stop-loss loses that percent of the
      balance, the taker fees of the entry and of the exit at the stop included;
    - else ``position_size_usdt`` (``/limits margin``).

    ``balance_unknown`` instead when the balance it needs is not known."""
    pct = strategy.position_size_pct or strategy.risk_per_trade_pct
    if pct is None:
        return entry_margin(strategy, limits)  # known before the price already
    cap = limits.max_position_size_usdt
    if balance is None or balance <= 0:
        return "balance_unknown"
    share = balance * pct / 100
    if strategy.position_size_pct is not None:
        return min(share, cap)
    loss_per_unit = abs(price - stop) + strategy.fee_rate * (price + stop)
    return min(share / loss_per_unit * price / leverage, cap)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round down to a multiple of ``step``: an order never exceeds what was asked."""
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def round_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    return (price / tick).to_integral_value(rounding=ROUND_HALF_UP) * tick


@dataclass(frozen=True, slots=True)
class Sizing:
    qty: Decimal
    price: Decimal  # the reference price the qty was sized at

    @property
    def notional(self) -> Decimal:
        return self.qty * self.price


def capped_leverage(leverage: int, instrument: Instrument) -> int:
    """The leverage to trade ``instrument`` at: the one in force, capped at Bybit's
    ``maxLeverage`` for it (which would refuse more)."""
    return max(1, min(leverage, int(instrument.max_leverage)))


def size_order(
    margin: Decimal, leverage: int, price: Decimal, instrument: Instrument
) -> Sizing | str:
    """Qty for ``margin`` at ``leverage``: notional ÷ price, down to ``qty_step``.

    Returns the rejection reason instead when the venue's minimums are not met.
    """
    if price <= 0:
        return "bad_price"
    qty = floor_to_step(margin * leverage / price, instrument.qty_step)
    qty = min(qty, floor_to_step(instrument.max_order_qty, instrument.qty_step))
    if qty < instrument.min_order_qty or qty <= 0:
        return "below_min_qty"
    if qty * price < instrument.min_notional:
        return "below_min_notional"
    return Sizing(qty=qty, price=price)


def protective_prices(
    side: Side,
    entry: Decimal,
    *,
    sl_pct: Decimal,
    tp_pct: Decimal,
    leverage: int,
    tick: Decimal,
) -> tuple[Decimal, Decimal]:
    """Stop-loss and take-profit prices from percent of margin (price move = pct ÷ leverage).

    Rounded to the tick, and always strictly on the losing / winning side of ``entry``.
    """
    sl_move = sl_pct / Decimal(100) / leverage
    tp_move = tp_pct / Decimal(100) / leverage
    if side is Side.BUY:
        stop = min(round_to_tick(entry * (1 - sl_move), tick), entry - tick)
        take = max(round_to_tick(entry * (1 + tp_move), tick), entry + tick)
        stop = max(stop, tick)  # a price is never zero or negative
    else:
        stop = max(round_to_tick(entry * (1 + sl_move), tick), entry + tick)
        take = min(round_to_tick(entry * (1 - tp_move), tick), entry - tick)
        take = max(take, tick)
    return stop, take


def trailing_prices(
    side: Side,
    entry: Decimal,
    *,
    distance_pct: Decimal,
    activation_pct: Decimal | None,
    leverage: int,
    tick: Decimal,
) -> tuple[Decimal, Decimal | None]:
    """A trailing stop's price distance and activation price from percent of margin (price
    move = pct ÷ leverage, as for SL/TP). The distance is rounded to the tick, at least one;
    the activation price is rounded to the tick on the winning side of ``entry`` (at least a
    tick beyond it; at it for 0%), None without ``activation_pct`` (active at once)."""
    distance = max(round_to_tick(entry * distance_pct / Decimal(100) / leverage, tick), tick)
    if activation_pct is None:
        return distance, None
    move = activation_pct / Decimal(100) / leverage
    below = floor_to_step(entry, tick)  # the entry's tick, or the one under it
    if side is Side.BUY:
        nearest = below if below == entry and move == 0 else below + tick
        return distance, max(round_to_tick(entry * (1 + move), tick), nearest)
    nearest = below if below < entry or move == 0 else below - tick
    return distance, max(min(round_to_tick(entry * (1 - move), tick), nearest), tick)


def balance_reason(required: Decimal, available: Decimal) -> str | None:
    """A venue refuses an entry whose margin plus fee exceeds the free balance."""
    return "insufficient_balance" if required > available else None
