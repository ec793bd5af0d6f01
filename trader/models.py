"""Value types of the engine: signals, instruments, prices, orders, fills, positions, trades.

All money is ``Decimal``; all times are timezone-aware UTC ``datetime``s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class Side(StrEnum):
    """Order or position side, spelled as Bybit spells it."""

    BUY = "Buy"
    SELL = "Sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        """+1 for a long, -1 for a short: PnL is sign × (exit − entry) × qty."""
        return 1 if self is Side.BUY else -1

    @property
    def label(self) -> str:
        return "LONG" if self is Side.BUY else "SHORT"


VERDICT_SIDES: dict[str, Side] = {"BUY": Side.BUY, "SELL": Side.SELL}


class CloseReason(StrEnum):
    STOP_LOSS = "SL"
    TAKE_PROFIT = "TP"
    TTL = "TTL"
    MANUAL = "manual"
    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "drawdown"  # the drawdown stop closed it
    EXTERNAL = "external"  # closed outside the bot (by hand on the exchange)
    LIQUIDATION = "liquidation"  # the exchange liquidated it
    ADL = "adl"  # the exchange auto-deleveraged it (closed it against a bankrupt trader)
    DELIVERY = "delivery"  # the exchange settled it: delivery, or the contract was delisted
    TRAILING_STOP = "trailing_stop"  # its trailing stop on the exchange triggered


@dataclass(frozen=True, slots=True)
class Signal:
    """One parsed row of the signal log."""

    id: str
    timestamp: datetime
    symbol: str
    verdict: str
    confidence: Decimal
    entry_price: Decimal | None = None
    ttl_minutes: int | None = None
    target_min: Decimal | None = None
    target_max: Decimal | None = None

    @property
    def side(self) -> Side | None:
        """The side to open, or None for a verdict we do not trade."""
        return VERDICT_SIDES.get(self.verdict)


@dataclass(frozen=True, slots=True)
class InvalidSignal:
    """A row of the signal log that could not be parsed. It is recorded, never traded."""

    id: str
    reason: str
    raw: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Instrument:
    """The trading filters of one linear contract, from instruments-info. ``category=linear``
    also holds USDC perpetuals and dated futures: only a USDT perpetual is traded."""

    symbol: str
    tick_size: Decimal
    qty_step: Decimal
    min_order_qty: Decimal
    max_order_qty: Decimal
    min_notional: Decimal
    max_leverage: Decimal = Decimal(100)
    contract_type: str = "LinearPerpetual"  # Bybit's contractType: or LinearFutures, ...
    settle_coin: str = "USDT"
    status: str = "Trading"  # Bybit's status: or PreLaunch, Delivering, Closed

    @property
    def is_usdt_perpetual(self) -> bool:
        return self.contract_type == "LinearPerpetual" and self.settle_coin == "USDT"


@dataclass(frozen=True, slots=True)
class Ticker:
    """Top of book and last trade of one symbol."""

    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    at: datetime

    def fill_price(self, side: Side) -> Decimal:
        """Where a market order of ``side`` fills: a buy at the ask, a sell at the bid,
        the last price when that side of the book is empty."""
        price = self.ask if side is Side.BUY else self.bid
        return price if price is not None and price > 0 else self.last


@dataclass(frozen=True, slots=True)
class EntryOrder:
    """A market order that opens a position, with SL/TP attached on the exchange."""

    link_id: str
    signal_id: str
    symbol: str
    side: Side
    qty: Decimal
    leverage: int
    stop_loss: Decimal
    take_profit: Decimal | None  # None: several take-profits follow the fill instead


@dataclass(frozen=True, slots=True)
class Quote:
    """The entry a signal would make at the market now: sized, with its SL/TP on the tick."""

    qty: Decimal
    price: Decimal  # the market price it was sized at
    stop_loss: Decimal
    take_profit: Decimal
    tick_size: Decimal
    margin: Decimal
    leverage: int  # as traded: capped at the instrument's maximum
    asked_leverage: int  # the leverage in force (limits), before the cap
    asked_margin: Decimal  # the limits' margin (``sizing.entry_margin``) it was quoted for


@dataclass(frozen=True, slots=True)
class ExitOrder:
    """A reduce-only market order that closes (all of) a position."""

    link_id: str
    symbol: str
    side: Side  # the order's side: the opposite of the position's
    qty: Decimal
    reason: CloseReason


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution: what was traded, at what price, for what fee (fee in USDT, ≥ 0 when paid)."""

    link_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    at: datetime
    exec_id: str = ""
    # The venue's own net PnL of what this fill closed (Bybit's closedPnl); None when the
    # venue does not say (paper, replay, entries): the PnL is then computed from prices.
    closed_pnl: Decimal | None = None
    # A take-profit's fill: the level that set it off (its order's trigger price), where known.
    trigger_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TrailingStop:
    """A trailing stop as the venue holds it: once the price reaches ``active_price`` (None:
    at once) it follows the best price by ``distance`` (a price distance), and closes the whole
    position at the market when the price comes back by it."""

    distance: Decimal
    active_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TakeProfitLevel:
    """One of several take-profits: closes ``qty`` at the market once the price reaches
    ``price`` (a partial take-profit on the venue)."""

    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class TakeProfitPlan:
    """A position's take-profits (``take_profits`` / ``targets_from_signal``) as placed on
    the venue, nearest the entry first, and its breakeven rule: once TP ``breakeven_after``
    has filled, the stop-loss moves to ``breakeven_price`` (once: ``breakeven_moved``)."""

    levels: tuple[TakeProfitLevel, ...]
    qty: Decimal  # the position's when it opened (the TPs placed may cover less of it)
    breakeven_after: int | None = None
    breakeven_price: Decimal | None = None
    breakeven_moved: bool = False
    # What take-profit fills took so far: counted from them alone, so that a position shrunk
    # otherwise (a close that filled in part, auto-deleveraging, a hand on Bybit) is no TP.
    tp_filled_qty: Decimal = Decimal(0)
    # The fills that said their trigger price: the levels at those prices (counted filled
    # whatever their size became: the venue cuts TPs when the position shrinks otherwise),
    # and their qty, which the count by size leaves out.
    filled_prices: tuple[Decimal, ...] = ()
    triggered_qty: Decimal = Decimal(0)

    def filled(self) -> int:
        """How many TPs have filled, nearest first: up to the furthest level a fill named by
        its trigger price (TPs trigger in price order: the nearer ones went before), then by
        the sizes of the fills that named none (stored before prices were kept), level by
        level. A fill naming a price that is no level (one dropped) counts for none."""
        named = 0
        for number, level in enumerate(self.levels, 1):
            if level.price in self.filled_prices:
                named = number
        unnamed, done = self.tp_filled_qty - self.triggered_qty, Decimal(0)
        count = named
        for level in self.levels[named:]:
            done += level.qty
            if done > unnamed:
                break
            count += 1
        return count

    def with_levels(self, levels: tuple[TakeProfitLevel, ...]) -> TakeProfitPlan:
        """This plan with ``levels`` instead (some dropped, some cut in size): a breakeven
        rule follows its own TP, found by its price and renumbered, or goes with it."""
        after = self.breakeven_after
        if after is None:
            return replace(self, levels=levels)
        prices = [level.price for level in levels]
        trigger = self.levels[after - 1].price
        if trigger not in prices:
            return replace(self, levels=levels, breakeven_after=None, breakeven_price=None)
        return replace(self, levels=levels, breakeven_after=prices.index(trigger) + 1)

    def took(self, qty: Decimal, trigger: Decimal | None = None) -> TakeProfitPlan:
        """The plan after a take-profit fill of ``qty``, set off at ``trigger`` (if known)."""
        total = self.tp_filled_qty + qty
        if trigger is None:
            return replace(self, tp_filled_qty=total)
        prices = self.filled_prices
        if trigger not in prices:
            prices = (*prices, trigger)
        triggered = self.triggered_qty + qty
        return replace(self, tp_filled_qty=total, filled_prices=prices, triggered_qty=triggered)


@dataclass(frozen=True, slots=True)
class Position:
    """An open position as the engine knows it."""

    signal_id: str
    symbol: str
    side: Side
    qty: Decimal
    entry_price: Decimal
    leverage: int
    margin: Decimal
    stop_loss: Decimal
    take_profit: Decimal
    entry_fee: Decimal
    opened_at: datetime
    expires_at: datetime
    link_id: str = ""
    id: int | None = None
    trailing: TrailingStop | None = None  # set on the venue after the entry filled
    take_profits: TakeProfitPlan | None = None  # several TPs, set after the entry filled

    @property
    def notional(self) -> Decimal:
        return self.qty * self.entry_price


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A position after its exit: the unit of PnL, stats and ``trades_log.csv``."""

    signal_id: str
    symbol: str
    side: Side
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    leverage: int
    margin: Decimal
    entry_fee: Decimal
    exit_fee: Decimal
    gross_pnl: Decimal
    net_pnl: Decimal
    reason: CloseReason
    opened_at: datetime
    closed_at: datetime
    id: int | None = None
    # A part of a position that stayed open (a take-profit, a partial exit): its PnL is
    # booked, but it is not a trade of its own in the stats; the position's last part ends
    # the trade, whose result is the sum of its parts.
    part: bool = False

    @property
    def fees(self) -> Decimal:
        return self.entry_fee + self.exit_fee

    @property
    def is_win(self) -> bool:
        return self.net_pnl > 0
