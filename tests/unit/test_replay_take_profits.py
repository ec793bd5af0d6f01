"""Replay with several take-profits and the breakeven move: the spec's worst case (the SL
reached: all at the SL; else each TP reached fills its share, the rest at the final price or,
once TP N was reached, at the breakeven price), one trade per position summing its parts,
the rule said in the report; and nothing changed without the keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from trader.__main__ import format_report
from trader.models import (
    ClosedTrade,
    CloseReason,
    Side,
    Signal,
    TakeProfitLevel,
    TakeProfitPlan,
    TrailingStop,
)
from trader.pnl import gross_pnl, taker_fee
from trader.replay import PricePath, load_instruments, load_outcomes, load_signals, replay
from trader.replay_plans import path_parts
from trader.strategy import Strategy, load_strategy
from trader.take_profits import Share

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WHEN = datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)
# 10x, margin 100 → notional 1000, qty 10 at 100 (the fallback instrument's step 0.001); SL
# 20% of margin: 98; TP1 20% (102) for half, TP2 40% (104) for the rest; breakeven after TP1
# at 100 × 1.00055 ÷ 0.99945 = 100.110… → 100.12 on the fallback tick (0.01).
PLAN = Strategy(
    leverage=10,
    sl_pct=Decimal(20),
    tp_pct=Decimal(40),
    take_profits=(Share(Decimal(20), Decimal(50)), Share(Decimal(40), Decimal(50))),
)
BREAKEVEN = replace(PLAN, breakeven_after_tp=1)


def one_trade(
    strategy: Strategy,
    high: str,
    low: str,
    final: str,
    verdict: str = "BUY",
    targets: tuple[str, str] | None = None,
) -> ClosedTrade:
    signal = Signal(
        id="x",
        timestamp=WHEN,
        symbol="SOLUSDT",
        verdict=verdict,
        confidence=Decimal("0.9"),
        entry_price=Decimal(100),
        ttl_minutes=15,
        target_min=None if targets is None else Decimal(targets[0]),
        target_max=None if targets is None else Decimal(targets[1]),
    )
    path = PricePath(Decimal(high), Decimal(low), Decimal(final))
    result = replay([signal], {(WHEN, "SOLUSDT", verdict): path}, strategy, {})
    (trade,) = result.trades  # one position, one trade, however many exits
    return trade


def net_of(parts: list[tuple[str, str]], *, sell: bool = False) -> Decimal:
    """The net PnL of exits (qty, price) of a 10-qty position entered at 100."""
    fee = Decimal("0.00055")
    total = -taker_fee(Decimal(10), Decimal(100), fee)
    side = Signal("x", WHEN, "S", "SELL" if sell else "BUY", Decimal(1)).side
    assert side is not None
    for qty, price in parts:
        q, p = Decimal(qty), Decimal(price)
        total += gross_pnl(side, q, Decimal(100), p) - taker_fee(q, p, fee)
    return total


@pytest.mark.parametrize(
    ("strategy", "high", "low", "final", "reason", "parts"),
    [
        # The SL reached: all of it at the SL, whatever TPs were reached too.
        (BREAKEVEN, "105", "97.9", "103", CloseReason.STOP_LOSS, [("10", "98")]),
        # Touched is reached, as Bybit's trigger (last price at the level) has it.
        (PLAN, "104", "98", "103", CloseReason.STOP_LOSS, [("10", "98")]),
        (PLAN, "104", "98.01", "103", CloseReason.TAKE_PROFIT, [("5", "102"), ("5", "104")]),
        # TP1 and TP2 reached: each its half.
        (PLAN, "104.5", "99", "101", CloseReason.TAKE_PROFIT, [("5", "102"), ("5", "104")]),
        # TP1 only: the rest at the final price.
        (PLAN, "103", "99", "101.3", CloseReason.TTL, [("5", "102"), ("5", "101.3")]),
        # TP1 only, breakeven after it: the rest at the breakeven price.
        (BREAKEVEN, "103", "99", "102.5", CloseReason.STOP_LOSS, [("5", "102"), ("5", "100.12")]),
        # No TP reached: as without a plan.
        (BREAKEVEN, "101", "99", "100.5", CloseReason.TTL, [("10", "100.5")]),
    ],
)
def test_a_long_exits_in_parts_in_the_worst_case(
    strategy: Strategy,
    high: str,
    low: str,
    final: str,
    reason: CloseReason,
    parts: list[tuple[str, str]],
) -> None:
    trade = one_trade(strategy, high, low, final)
    assert trade.reason is reason
    assert trade.qty == Decimal(10)
    assert trade.net_pnl == net_of(parts)
    average = sum(Decimal(q) * Decimal(p) for q, p in parts) / 10
    assert trade.exit_price == average
    assert trade.fees == taker_fee(Decimal(10), Decimal(100), Decimal("0.00055")) + sum(
        taker_fee(Decimal(q), Decimal(p), Decimal("0.00055")) for q, p in parts
    )


def test_a_short_takes_the_signals_targets_the_nearer_first() -> None:
    signal_targets = replace(PLAN, take_profits=(), targets_from_signal=True, breakeven_after_tp=1)
    # Short from 100: targets 97 (TP1) and 95 (TP2), 50/50; breakeven 99.89 (floored).
    trade = one_trade(signal_targets, "101", "96", "96.5", verdict="SELL", targets=("95", "97"))
    assert trade.reason is CloseReason.STOP_LOSS
    assert trade.net_pnl == net_of([("5", "97"), ("5", "99.89")], sell=True)


def test_a_one_level_plan_at_parameters_tp_trades_as_the_single_tp() -> None:
    strategy = load_strategy(EXAMPLES / "BYBIT_OPTIMAL_CONFIG.json")
    records = load_signals(EXAMPLES / "signals_log.csv")
    outcomes = load_outcomes(EXAMPLES / "signal_outcomes.csv")
    instruments = load_instruments(EXAMPLES / "instruments.json")
    plain = replay(records, outcomes, strategy, instruments)
    assert plain.rules == ()
    assert "Exit rule" not in format_report(plain, strategy, Path("s.csv"))
    one = replace(strategy, take_profits=(Share(strategy.tp_pct, Decimal(100)),))
    planned = replay(records, outcomes, one, instruments)
    assert [(t.reason, t.exit_price, t.net_pnl) for t in planned.trades] == [
        (t.reason, t.exit_price, t.net_pnl) for t in plain.trades
    ]


def test_the_report_says_the_rule_and_counts_one_trade_per_position() -> None:
    strategy = load_strategy(EXAMPLES / "BYBIT_OPTIMAL_CONFIG.json")
    records = load_signals(EXAMPLES / "signals_log.csv")
    outcomes = load_outcomes(EXAMPLES / "signal_outcomes.csv")
    instruments = load_instruments(EXAMPLES / "instruments.json")
    plain = replay(records, outcomes, strategy, instruments)
    two = replace(
        strategy,
        take_profits=(Share(Decimal(40), Decimal(50)), Share(Decimal(75), Decimal(50))),
        breakeven_after_tp=1,
    )
    result = replay(records, outcomes, two, instruments)
    assert len(result.trades) == len(plain.trades) == result.outcomes["opened"]
    report = format_report(result, two, Path("s.csv"))
    assert (
        "Exit rule: take-profits 50% at 40% of margin, 50% at 75% of margin; worst case: SL "
        "reached: all at the SL; else each TP reached fills its share and the rest exits at "
        "the final price, or the breakeven price once TP1 was reached"
    ) in report
    # How many positions filled each TP: the "Exits" line names only the last part's exit.
    fills = result.tp_fills
    assert len(fills) == 2
    assert fills[0] >= fills[1] >= 1  # TP2 fills only after TP1 did
    assert f"Take-profits filled      TP1 {fills[0]}, TP2 {fills[1]} (positions)" in report
    assert "Take-profits filled" not in format_report(plain, strategy, Path("s.csv"))


def test_with_a_trailing_stop_the_rest_exits_at_the_level_the_price_meets_first() -> None:
    """Long from 100, TP1 at 102 for half, breakeven 100.12 after TP1, a trailing stop of 0.5
    active from 101: the high of 103 reached both; on the way back the price meets the
    trailing level (100.5) before breakeven (100.12): the rest exits there."""
    plan = TakeProfitPlan(
        (TakeProfitLevel(Decimal(102), Decimal(1)), TakeProfitLevel(Decimal(104), Decimal(1))),
        qty=Decimal(2),
        breakeven_after=1,
        breakeven_price=Decimal("100.12"),
    )
    trail = TrailingStop(Decimal("0.5"), Decimal(101))
    path = {"high": Decimal(103), "low": Decimal("99.5"), "final": Decimal("99.8")}
    parts = path_parts(Side.BUY, plan, stop=Decimal(98), trailing=trail, **path)
    assert parts == [
        (Decimal(1), Decimal(102), CloseReason.TAKE_PROFIT),
        (Decimal(1), Decimal("100.5"), CloseReason.TRAILING_STOP),
    ]
    # The trailing stop not activated: breakeven for the rest, as without it.
    far = TrailingStop(Decimal("0.5"), Decimal("103.5"))
    parts = path_parts(Side.BUY, plan, stop=Decimal(98), trailing=far, **path)
    assert parts[-1] == (Decimal(1), Decimal("100.12"), CloseReason.STOP_LOSS)
