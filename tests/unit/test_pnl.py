"""Fees, PnL and statistics: fees on notional, PnL net of fees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trader import pnl
from trader.models import ClosedTrade, CloseReason, Fill, Position, Side

T0 = datetime(2025, 10, 19, tzinfo=UTC)
RATE = Decimal("0.00055")


def position(side: Side = Side.BUY, qty: str = "26.2", entry: str = "190") -> Position:
    return Position(
        signal_id="s",
        symbol="SOLUSDT",
        side=side,
        qty=Decimal(qty),
        entry_price=Decimal(entry),
        leverage=50,
        margin=Decimal(qty) * Decimal(entry) / 50,
        stop_loss=Decimal(1),
        take_profit=Decimal(1000),
        entry_fee=pnl.taker_fee(Decimal(qty), Decimal(entry), RATE),
        opened_at=T0,
        expires_at=T0 + timedelta(minutes=15),
    )


def exit_fill(price: str, side: Side, qty: str = "26.2") -> Fill:
    return Fill(
        link_id="x",
        symbol="SOLUSDT",
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        fee=pnl.taker_fee(Decimal(qty), Decimal(price), RATE),
        at=T0 + timedelta(minutes=3),
    )


def test_fee_is_charged_on_notional_not_margin() -> None:
    # 100 USDT margin at 50x is 5000 notional: the fee is 2.75, not 0.055.
    assert pnl.taker_fee(Decimal("26.3157"), Decimal(190), RATE) == Decimal("2.74999065")
    assert pnl.taker_fee(Decimal(50), Decimal(100), RATE) == Decimal("2.75")


def test_long_take_profit_net_of_both_fees() -> None:
    trade = pnl.close_trade(position(), exit_fill("192.85", Side.SELL), CloseReason.TAKE_PROFIT)
    assert trade.gross_pnl == Decimal("74.670")  # (192.85 − 190) × 26.2
    assert trade.entry_fee == Decimal("2.73790000")
    assert trade.exit_fee == Decimal("2.77896850")  # 26.2 × 192.85 × 0.00055
    assert trade.net_pnl == trade.gross_pnl - trade.entry_fee - trade.exit_fee
    assert trade.net_pnl == Decimal("69.15313150")


def test_short_stop_loss_loses_price_move_plus_fees() -> None:
    trade = pnl.close_trade(
        position(Side.SELL), exit_fill("191.52", Side.BUY), CloseReason.STOP_LOSS
    )
    assert trade.gross_pnl == Decimal("-39.824")
    assert trade.net_pnl < trade.gross_pnl
    assert not trade.is_win


def test_unrealised_pnl_counts_the_exit_fee_too() -> None:
    upnl = pnl.unrealised_pnl(position(), Decimal(190), RATE)
    assert upnl == -(pnl.taker_fee(Decimal("26.2"), Decimal(190), RATE) * 2)


def _trade(net: str, minute: int) -> ClosedTrade:
    return ClosedTrade(
        signal_id=str(minute),
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal(1),
        entry_price=Decimal(1),
        exit_price=Decimal(1),
        leverage=1,
        margin=Decimal(1),
        entry_fee=Decimal("0.5"),
        exit_fee=Decimal("0.5"),
        gross_pnl=Decimal(net) + 1,
        net_pnl=Decimal(net),
        reason=CloseReason.TTL,
        opened_at=T0,
        closed_at=T0 + timedelta(minutes=minute),
    )


def test_stats_win_rate_profit_factor_roi_and_drawdown() -> None:
    trades = [_trade("30", 1), _trade("-10", 2), _trade("-20", 3), _trade("50", 4)]
    stats = pnl.trade_stats(trades, Decimal(1000))
    assert (stats.trades, stats.wins, stats.losses) == (4, 2, 2)
    assert stats.win_rate == Decimal("0.5")
    assert stats.profit_factor == Decimal(80) / Decimal(30)
    assert stats.net_pnl == Decimal(50)
    assert stats.fees == Decimal(4)
    assert stats.roi == Decimal("0.05")
    assert stats.max_drawdown == Decimal(30)  # 1030 → 1000


def test_stats_of_nothing() -> None:
    stats = pnl.trade_stats([], Decimal(1000))
    assert stats.win_rate is None
    assert stats.profit_factor is None
    assert stats.net_pnl == 0
    assert stats.max_drawdown == 0


@settings(max_examples=300)
@given(
    qty=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3),
    price=st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(200000), places=5),
    rate=st.decimals(min_value=Decimal(0), max_value=Decimal("0.002"), places=6),
)
def test_fee_is_always_rate_times_notional(qty: Decimal, price: Decimal, rate: Decimal) -> None:
    fee = pnl.taker_fee(qty, price, rate)
    assert abs(fee - qty * price * rate) <= pnl.FEE_QUANTUM / 2
    assert fee >= 0


@settings(max_examples=200)
@given(
    side=st.sampled_from(list(Side)),
    entry=st.decimals(min_value=Decimal(1), max_value=Decimal(1000), places=2),
    exit_price=st.decimals(min_value=Decimal(1), max_value=Decimal(1000), places=2),
)
def test_net_pnl_is_gross_less_fees_and_a_round_trip_at_one_price_loses_the_fees(
    side: Side, entry: Decimal, exit_price: Decimal
) -> None:
    pos = position(side, qty="3", entry=str(entry))
    trade = pnl.close_trade(
        pos, exit_fill(str(exit_price), side.opposite, qty="3"), CloseReason.MANUAL
    )
    assert trade.net_pnl == trade.gross_pnl - trade.fees
    if exit_price == entry:
        assert trade.net_pnl == -trade.fees


def test_a_partial_close_books_the_part_and_keeps_the_rest_open() -> None:
    whole = position(qty="26.2")
    trade, rest = pnl.close_part(
        whole, exit_fill("192.85", Side.SELL, qty="10"), CloseReason.MANUAL
    )
    assert rest is not None
    assert (trade.qty, rest.qty) == (Decimal(10), Decimal("16.2"))
    assert trade.gross_pnl == Decimal("28.50")  # (192.85 − 190) × 10
    assert trade.entry_fee + rest.entry_fee == whole.entry_fee
    assert trade.margin + rest.margin == whole.margin


def test_an_exit_for_the_whole_position_leaves_nothing_open() -> None:
    trade, rest = pnl.close_part(position(), exit_fill("180", Side.SELL), CloseReason.STOP_LOSS)
    assert rest is None
    assert trade.qty == Decimal("26.2")


def test_a_flat_venue_books_the_whole_position_even_for_a_smaller_fill() -> None:
    trade, rest = pnl.close_part(
        position(), exit_fill("180", Side.SELL, qty="5"), CloseReason.LIQUIDATION, closes_all=True
    )
    assert (trade.qty, rest) == (Decimal("26.2"), None)


@settings(max_examples=200)
@given(
    qty=st.decimals(min_value=Decimal("0.002"), max_value=Decimal(100000), places=3),
    parts=st.lists(st.integers(min_value=1, max_value=999), min_size=1, max_size=6),
)
def test_the_parts_of_a_position_add_up_to_what_was_traded(qty: Decimal, parts: list[int]) -> None:
    """However a position is closed in parts, qty, margin and entry fee booked sum to the
    whole: nothing is booked twice and nothing is lost."""
    whole = position(qty=str(qty), entry="3.137")
    open_part: Position | None = whole
    booked: list[ClosedTrade] = []
    for share in parts:
        assert open_part is not None
        part_qty = (open_part.qty * share / 1000).quantize(Decimal("0.001"))
        if part_qty <= 0:
            continue
        fill = exit_fill("3.2", Side.SELL, qty=str(part_qty))
        trade, open_part = pnl.close_part(open_part, fill, CloseReason.MANUAL)
        booked.append(trade)
        if open_part is None:
            break
    if open_part is not None:
        trade, open_part = pnl.close_part(
            open_part, exit_fill("3.2", Side.SELL, qty=str(open_part.qty)), CloseReason.TTL
        )
        booked.append(trade)
    assert open_part is None
    assert sum(t.qty for t in booked) == whole.qty
    assert sum(t.entry_fee for t in booked) == whole.entry_fee
    assert sum(t.margin for t in booked) == whole.margin
