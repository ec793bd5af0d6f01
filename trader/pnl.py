"""Money: fees, PnL and trading statistics. Pure functions over ``Decimal``.

The live engine, paper trading and replay all use these; there is no second copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from trader.models import ClosedTrade, CloseReason, Fill, Position, Side

FEE_QUANTUM = Decimal("0.00000001")  # Bybit reports execFee to 8 decimals


def notional(qty: Decimal, price: Decimal) -> Decimal:
    return qty * price


def taker_fee(qty: Decimal, price: Decimal, fee_rate: Decimal) -> Decimal:
    """The fee of one fill: the rate on the notional (qty × price), never on the margin."""
    return (notional(qty, price) * fee_rate).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)


def gross_pnl(side: Side, qty: Decimal, entry: Decimal, exit_price: Decimal) -> Decimal:
    """Price PnL of a position before fees."""
    return side.sign * (exit_price - entry) * qty


def unrealised_pnl(position: Position, price: Decimal, fee_rate: Decimal) -> Decimal:
    """What closing now at ``price`` would make, net of both fees."""
    gross = gross_pnl(position.side, position.qty, position.entry_price, price)
    return gross - position.entry_fee - taker_fee(position.qty, price, fee_rate)


def open_position(
    signal_id: str,
    entry_fill: Fill,
    *,
    leverage: int,
    stop_loss: Decimal,
    take_profit: Decimal,
    expires_at: datetime,
) -> Position:
    """The position an entry fill opens: margin is its notional ÷ leverage, fee as charged."""
    return Position(
        signal_id=signal_id,
        symbol=entry_fill.symbol,
        side=entry_fill.side,
        qty=entry_fill.qty,
        entry_price=entry_fill.price,
        leverage=leverage,
        margin=notional(entry_fill.qty, entry_fill.price) / leverage,
        stop_loss=stop_loss,
        take_profit=take_profit,
        entry_fee=entry_fill.fee,
        opened_at=entry_fill.at,
        expires_at=expires_at,
        link_id=entry_fill.link_id,
    )


def close_trade(
    position: Position, exit_fill: Fill, reason: CloseReason, closed_at: datetime | None = None
) -> ClosedTrade:
    """The closed trade of ``position`` exited by ``exit_fill``: PnL net of entry and exit fees.

    Where the venue booked its own net PnL for the exit (Bybit's ``closedPnl``), that figure
    is the trade's net PnL: it is what the account actually made. It equals gross − fees
    unless the venue charged something we do not model.
    """
    gross = gross_pnl(position.side, position.qty, position.entry_price, exit_fill.price)
    net = gross - position.entry_fee - exit_fill.fee
    if exit_fill.closed_pnl is not None:
        net = exit_fill.closed_pnl
    return ClosedTrade(
        signal_id=position.signal_id,
        symbol=position.symbol,
        side=position.side,
        qty=position.qty,
        entry_price=position.entry_price,
        exit_price=exit_fill.price,
        leverage=position.leverage,
        margin=position.margin,
        entry_fee=position.entry_fee,
        exit_fee=exit_fill.fee,
        gross_pnl=gross,
        net_pnl=net,
        reason=reason,
        opened_at=position.opened_at,
        closed_at=closed_at or exit_fill.at,
    )


def split_position(position: Position, qty: Decimal) -> tuple[Position, Position]:
    """The part of ``position`` that ``qty`` closes, and what stays open. Margin and entry fee
    are shared pro rata; the part's share is rounded and the rest keeps the remainder, so the
    two always add up to the whole exactly."""
    if not Decimal(0) < qty < position.qty:
        raise ValueError(f"a part of {position.qty} must be between 0 and it, not {qty}")
    share = qty / position.qty
    part_fee = (position.entry_fee * share).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)
    part_margin = position.margin * share
    part = replace(position, qty=qty, margin=part_margin, entry_fee=part_fee)
    rest = replace(
        position,
        qty=position.qty - qty,
        margin=position.margin - part_margin,
        entry_fee=position.entry_fee - part_fee,
    )
    return part, rest


def close_part(
    position: Position, exit_fill: Fill, reason: CloseReason, *, closes_all: bool = False
) -> tuple[ClosedTrade, Position | None]:
    """Book an exit fill against ``position``: the trade it makes and what stays open (None
    when nothing does). A fill for less than the position closes that part only, unless
    ``closes_all`` (the venue says the position is flat: the whole of it is booked)."""
    if closes_all or exit_fill.qty >= position.qty:
        return close_trade(position, exit_fill, reason), None
    part, rest = split_position(position, exit_fill.qty)
    return replace(close_trade(part, exit_fill, reason), part=True), rest


@dataclass(frozen=True, slots=True)
class Stats:
    trades: int
    wins: int
    losses: int
    net_pnl: Decimal
    gross_profit: Decimal  # sum of winning trades' net PnL
    gross_loss: Decimal  # sum of losing trades' net PnL (≤ 0)
    fees: Decimal
    max_drawdown: Decimal  # largest peak-to-trough fall of equity, ≥ 0
    starting_balance: Decimal
    best: Decimal | None = None  # the best trade's net PnL; None with no trades
    worst: Decimal | None = None  # the worst trade's net PnL
    held: timedelta = timedelta(0)  # the trades' time open, added up (those whose open is known)
    timed: int = 0  # how many trades ``held`` counts
    # The trades and parts of trades counted: a part of a position still open (a take-profit)
    # moves the PnL and fees but ends no trade; a trade counts at its last part.
    moves: int = 0

    @property
    def average_holding(self) -> timedelta | None:
        """How long a trade was open, on average; None when no trade's open time is known."""
        return self.held / self.timed if self.timed else None

    @property
    def win_rate(self) -> Decimal | None:
        """Share of trades with a positive net PnL, 0..1; None with no trades."""
        return Decimal(self.wins) / self.trades if self.trades else None

    @property
    def profit_factor(self) -> Decimal | None:
        """Gross profit over gross loss; None when there is no loss to divide by."""
        return self.gross_profit / -self.gross_loss if self.gross_loss < 0 else None

    @property
    def roi(self) -> Decimal | None:
        """Net PnL as a share of the starting balance."""
        return self.net_pnl / self.starting_balance if self.starting_balance > 0 else None


def trade_stats(trades: Sequence[ClosedTrade], starting_balance: Decimal) -> Stats:
    """Statistics of closed trades, taken in the order they closed. A position closed in
    parts is one trade, ended by its last part (the one not marked ``part``), whose result
    is the sum of its parts."""
    tally = StatsTally(starting_balance)
    earlier: dict[str, Decimal] = {}  # the parts so far of positions not ended yet
    for trade in sorted(trades, key=lambda t: t.closed_at):
        before = earlier.pop(trade.signal_id, Decimal(0))
        if trade.part:
            earlier[trade.signal_id] = before + trade.net_pnl
        held = trade.closed_at - trade.opened_at
        tally.add(trade.net_pnl, trade.fees, held, ends=not trade.part, earlier=before)
    return tally.stats()


def equity_curve(
    trades: Sequence[ClosedTrade], starting_balance: Decimal
) -> list[tuple[datetime, Decimal]]:
    """Balance after each closed trade, in close order."""
    equity = starting_balance
    curve: list[tuple[datetime, Decimal]] = []
    for trade in sorted(trades, key=lambda t: t.closed_at):
        equity += trade.net_pnl
        curve.append((trade.closed_at, equity))
    return curve


class StatsTally:
    """``Stats`` folded one closed trade at a time, in close order, so that the read side
    keeps them up to date without re-reading history. ``trade_stats`` is this fold too: one
    implementation. Exact: every sum is a ``Decimal`` sum, in close order.

    A position closed in parts (take-profits, partial exits) is one trade: each part moves
    the money (net PnL, fees, the balance and its drawdown) when it closes; the trade is
    counted (win or loss, best, worst, time held) once, at its last part, on its result.

    Tallies of consecutive stretches of trades combine (``merge``) into the tally of them
    all, drawdown included: the read side keeps one per day and adds up any run of days."""

    __slots__ = (
        "best",
        "equity",
        "fees",
        "gross_loss",
        "gross_profit",
        "held",
        "losses",
        "max_drawdown",
        "moves",
        "net_pnl",
        "peak",
        "starting_balance",
        "timed",
        "trades",
        "trough",
        "wins",
        "worst",
    )

    def __init__(self, starting_balance: Decimal) -> None:
        self.starting_balance = starting_balance
        self.trades = self.wins = self.losses = self.timed = 0
        self.moves = 0  # the trades and parts counted: each moved the balance
        self.net_pnl = self.gross_profit = self.gross_loss = self.fees = Decimal(0)
        self.equity = self.peak = starting_balance  # the balance, and its highest so far
        self.trough = starting_balance  # the lowest balance after a trade (once there is one)
        self.max_drawdown = Decimal(0)
        self.best: Decimal | None = None
        self.worst: Decimal | None = None
        self.held = timedelta(0)

    def add(
        self,
        net_pnl: Decimal,
        fees: Decimal,
        held: timedelta | None = None,
        ends: bool = True,
        earlier: Decimal = Decimal(0),
    ) -> Decimal:
        """Count the next trade, or part of one, to close (``held``: how long it was open,
        where known); returns the balance after it. ``ends``: the trade ends here (False: a
        part, its position stays open); ``earlier``: the net PnL of its parts before this
        one, which its result adds up."""
        self.moves += 1
        self.net_pnl += net_pnl
        self.fees += fees
        if ends:  # counted here, not in a helper: this runs once a trade over the history
            result = earlier + net_pnl if earlier else net_pnl
            self.trades += 1
            if result > 0:
                self.wins += 1
                self.gross_profit += result
            else:
                self.losses += 1
                self.gross_loss += result
            if self.best is None or result > self.best:
                self.best = result
            if self.worst is None or result < self.worst:
                self.worst = result
            if held is not None:
                self.held += held
                self.timed += 1
        # Comparisons, not max()/min(): the same figures (a tie keeps the one there).
        equity = self.equity = self.equity + net_pnl
        if self.moves == 1 or equity < self.trough:
            self.trough = equity
        if equity > self.peak:
            self.peak = equity
        drawdown = self.peak - equity
        if drawdown > self.max_drawdown:
            self.max_drawdown = drawdown
        return equity

    def merge(self, later: StatsTally) -> None:
        """Count the trades of ``later`` as closing after these, in its order: the same
        figures as adding them one by one (its starting balance is only where its path
        starts, moved to this balance)."""
        if later.moves == 0:
            return
        shift = self.equity - later.starting_balance
        # A fall inside ``later``, or from this side's peak down to its lowest point.
        self.max_drawdown = max(
            self.max_drawdown, later.max_drawdown, self.peak - (later.trough + shift)
        )
        self.peak = max(self.peak, later.peak + shift)
        self.trough = (
            later.trough + shift if self.moves == 0 else min(self.trough, later.trough + shift)
        )
        self.equity = later.equity + shift
        self.moves += later.moves
        self.trades += later.trades
        self.wins += later.wins
        self.losses += later.losses
        self.net_pnl += later.net_pnl
        self.gross_profit += later.gross_profit
        self.gross_loss += later.gross_loss
        self.fees += later.fees
        if later.best is not None and (self.best is None or later.best > self.best):
            self.best = later.best
        if later.worst is not None and (self.worst is None or later.worst < self.worst):
            self.worst = later.worst
        self.held += later.held
        self.timed += later.timed

    def copy(self) -> StatsTally:
        twin = StatsTally(self.starting_balance)
        for name in self.__slots__:
            setattr(twin, name, getattr(self, name))
        return twin

    def stats(self) -> Stats:
        return Stats(
            trades=self.trades,
            wins=self.wins,
            losses=self.losses,
            net_pnl=self.net_pnl,
            gross_profit=self.gross_profit,
            gross_loss=self.gross_loss,
            fees=self.fees,
            max_drawdown=self.max_drawdown,
            starting_balance=self.starting_balance,
            best=self.best,
            worst=self.worst,
            held=self.held,
            timed=self.timed,
            moves=self.moves,
        )
