"""Replay with a trailing stop: the spec's worst case (the activation level less the trailing
distance, once the activation level was reached and the SL not), said in the report; and
nothing changed without the keys."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from trader.__main__ import format_report, main
from trader.models import CloseReason, Side, Signal, TrailingStop
from trader.replay import PricePath, load_instruments, load_outcomes, load_signals, replay
from trader.rules import path_exit
from trader.strategy import Strategy, load_strategy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WHEN = datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)
# 10x, SL 20% / TP 40% of margin: a 2% / 4% move from 100, SL 98, TP 104; the trailing stop
# 10% of margin (1.00 away), activated 20% in profit (at 102).
STRATEGY = Strategy(
    leverage=10,
    sl_pct=Decimal(20),
    tp_pct=Decimal(40),
    trailing_stop_pct=Decimal(10),
    trailing_activation_pct=Decimal(20),
)


def one_trade(
    strategy: Strategy, verdict: str, high: str, low: str, final: str
) -> tuple[CloseReason, Decimal]:
    signal = Signal(
        id="x",
        timestamp=WHEN,
        symbol="SOLUSDT",
        verdict=verdict,
        confidence=Decimal("0.9"),
        entry_price=Decimal(100),
        ttl_minutes=15,
    )
    path = PricePath(Decimal(high), Decimal(low), Decimal(final))
    result = replay([signal], {(WHEN, "SOLUSDT", verdict): path}, strategy, {})
    (trade,) = result.trades
    return trade.reason, trade.exit_price


@pytest.mark.parametrize(
    ("high", "low", "final", "reason", "exit_price"),
    [
        # Activation reached, TP not: the activation level less the distance.
        ("103", "99", "102.5", CloseReason.TRAILING_STOP, Decimal("101.00")),
        # TP reached too, but the activation level comes first: the trailing stop may have
        # closed it on the way; the worst case is taken.
        ("105", "99", "104.5", CloseReason.TRAILING_STOP, Decimal("101.00")),
        # The SL reached: the whole position at the SL, whatever else was reached.
        ("103", "97.5", "102", CloseReason.STOP_LOSS, Decimal("98.00")),
        # Not activated: as without a trailing stop.
        ("101.5", "99", "100.5", CloseReason.TTL, Decimal("100.5")),
        # Never worse than the lowest price reached: 101.00 was never traded.
        ("103", "101.5", "102", CloseReason.TRAILING_STOP, Decimal("101.5")),
    ],
)
def test_a_long_exits_at_the_worst_the_trailing_stop_allows(
    high: str, low: str, final: str, reason: CloseReason, exit_price: Decimal
) -> None:
    assert one_trade(STRATEGY, "BUY", high, low, final) == (reason, exit_price)


def test_a_short_exits_at_the_activation_level_plus_the_distance() -> None:
    # Short from 100: activation at 98, the distance 1.00, SL 102, TP 96.
    assert one_trade(STRATEGY, "SELL", "101", "97", "97.5") == (
        CloseReason.TRAILING_STOP,
        Decimal("99.00"),
    )


def test_an_activation_beyond_the_tp_leaves_the_tp_first() -> None:
    beyond = replace(STRATEGY, trailing_activation_pct=Decimal(50))  # activates at 105
    assert one_trade(beyond, "BUY", "106", "99", "105") == (
        CloseReason.TAKE_PROFIT,
        Decimal("104.00"),
    )


def test_one_active_at_once_exits_at_the_entry_less_the_distance_unless_the_sl_hit() -> None:
    at_once = replace(STRATEGY, trailing_activation_pct=None)
    assert one_trade(at_once, "BUY", "103", "98.5", "102") == (
        CloseReason.TRAILING_STOP,
        Decimal("99.00"),
    )


def test_path_exit_without_a_trailing_stop_is_as_before() -> None:
    args: dict[str, Any] = {
        "high": Decimal(105),
        "low": Decimal(99),
        "final": Decimal(101),
        "stop": Decimal(98),
        "take": Decimal(104),
    }
    assert path_exit(Side.BUY, **args) == (CloseReason.TAKE_PROFIT, Decimal(104))
    trail = TrailingStop(Decimal(1), Decimal(102))
    assert path_exit(Side.BUY, **args, trailing=trail) == (
        CloseReason.TRAILING_STOP,
        Decimal(101),
    )


def test_the_sample_without_the_keys_says_no_rule_and_with_them_says_it() -> None:
    strategy = load_strategy(EXAMPLES / "BYBIT_OPTIMAL_CONFIG.json")
    records = load_signals(EXAMPLES / "signals_log.csv")
    outcomes = load_outcomes(EXAMPLES / "signal_outcomes.csv")
    instruments = load_instruments(EXAMPLES / "instruments.json")
    plain = replay(records, outcomes, strategy, instruments)
    assert plain.rules == ()
    assert "Exit rule" not in format_report(plain, strategy, Path("s.csv"))
    assert all(t.reason is not CloseReason.TRAILING_STOP for t in plain.trades)

    trailing = replace(strategy, trailing_stop_pct=Decimal(20), trailing_activation_pct=Decimal(30))
    result = replay(records, outcomes, trailing, instruments)
    report = format_report(result, trailing, Path("s.csv"))
    assert "Exit rule: trailing stop 20% of margin (0.4% price move), active from 30%" in report
    exits = [t for t in result.trades if t.reason is CloseReason.TRAILING_STOP]
    assert exits
    assert "trailing_stop " + str(len(exits)) in report


def test_the_cli_reads_the_keys_from_the_strategy_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads((EXAMPLES / "BYBIT_OPTIMAL_CONFIG.json").read_text())
    data["trailing_stop_pct"] = 20
    path = tmp_path / "strategy.json"
    path.write_text(json.dumps(data))
    code = main(
        [
            "replay",
            "--signals",
            str(EXAMPLES / "signals_log.csv"),
            "--outcomes",
            str(EXAMPLES / "signal_outcomes.csv"),
            "--strategy",
            str(path),
            "--chart",
            str(tmp_path / "equity.png"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Exit rule: trailing stop 20% of margin (0.4% price move), active at once" in out
