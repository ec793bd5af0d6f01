"""Money: fees, PnL and trading statistics. Pure functions over ``Decimal``.

The live engine, paper trading and replay all use these; there is no second copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
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
    return close_trade(part, exit_fill, reason), rest


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
    """Statistics of closed trades in the order they closed."""
    wins = [t.net_pnl for t in trades if t.net_pnl > 0]
    losses = [t.net_pnl for t in trades if t.net_pnl <= 0]
    curve = equity_curve(trades, starting_balance)
    peak = starting_balance
    drawdown = Decimal(0)
    for _, equity in curve:
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    return Stats(
        trades=len(trades),
        wins=len(wins),
        losses=len(losses),
        net_pnl=sum((t.net_pnl for t in trades), Decimal(0)),
        gross_profit=sum(wins, Decimal(0)),
        gross_loss=sum(losses, Decimal(0)),
        fees=sum((t.fees for t in trades), Decimal(0)),
        max_drawdown=drawdown,
        starting_balance=starting_balance,
    )


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
