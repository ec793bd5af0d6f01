"""Replay over the bundled sample data: counts, honest fees, and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from trader.__main__ import main
from trader.models import CloseReason, Signal
from trader.pnl import taker_fee
from trader.replay import (
    PricePath,
    ReplayResult,
    load_instruments,
    load_outcomes,
    load_signals,
    replay,
)
from trader.settings import Strategy, load_strategy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def sample() -> tuple[Strategy, ReplayResult]:
    strategy = load_strategy(EXAMPLES / "BYBIT_OPTIMAL_CONFIG.json")
    result = replay(
        load_signals(EXAMPLES / "signals_log.csv"),
        load_outcomes(EXAMPLES / "signal_outcomes.csv"),
        strategy,
        load_instruments(EXAMPLES / "instruments.json"),
    )
    return strategy, result


def test_sample_replay_accounts_for_every_distinct_signal(
    sample: tuple[Strategy, ReplayResult],
) -> None:
    _, result = sample
    assert result.signals == 543
    assert result.unique == 535
    assert sum(result.outcomes.values()) == 535
    assert result.outcomes["opened"] == len(result.trades)


def test_sample_replay_charges_the_taker_fee_on_notional_at_entry_and_exit(
    sample: tuple[Strategy, ReplayResult],
) -> None:
    strategy, result = sample
    trades = result.trades
    assert trades
    for trade in trades:
        assert trade.entry_fee == taker_fee(trade.qty, trade.entry_price, strategy.fee_rate)
        assert trade.exit_fee == taker_fee(trade.qty, trade.exit_price, strategy.fee_rate)
        assert trade.net_pnl == trade.gross_pnl - trade.entry_fee - trade.exit_fee
        # 100 USDT margin at 50x is ~5,000 notional: the round trip costs ~5.5 USDT, not 0.11.
        assert Decimal(5) < trade.fees < Decimal(6)
        assert trade.qty * trade.entry_price <= Decimal(5000)
    stats = result.stats
    assert stats.fees == sum((t.fees for t in trades), Decimal(0))
    assert stats.net_pnl == sum((t.net_pnl for t in trades), Decimal(0))


def test_sample_replay_figures(sample: tuple[Strategy, ReplayResult]) -> None:
    # The reference figures for the bundled data (see the README); a change here is a change
    # in the trading rules or the money arithmetic and must be deliberate.
    _, result = sample
    stats = result.stats
    assert stats.trades == 104
    assert stats.wins == 30
    assert round(stats.fees, 2) == Decimal("570.10")
    assert round(stats.net_pnl, 2) == Decimal("-905.45")


def test_sl_is_assumed_first_when_the_path_reached_both() -> None:
    strategy = Strategy(leverage=50, sl_pct=Decimal(40), tp_pct=Decimal(75))
    when = datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)
    signal = Signal(
        id="x",
        timestamp=when,
        symbol="SOLUSDT",
        verdict="BUY",
        confidence=Decimal("0.9"),
        entry_price=Decimal(100),
        ttl_minutes=15,
    )
    paths = {(when, "SOLUSDT", "BUY"): PricePath(Decimal(110), Decimal(90), Decimal(105))}
    result = replay([signal], paths, strategy, {})
    (trade,) = result.trades
    assert trade.reason is CloseReason.STOP_LOSS
    assert trade.exit_price < trade.entry_price


def test_cli_prints_the_table_and_writes_the_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "equity.png"
    code = main(
        [
            "replay",
            "--signals",
            str(EXAMPLES / "signals_log.csv"),
            "--outcomes",
            str(EXAMPLES / "signal_outcomes.csv"),
            "--strategy",
            str(EXAMPLES / "BYBIT_OPTIMAL_CONFIG.json"),
            "--chart",
            str(chart),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    for label in ("Trades", "Wins", "Win rate", "Profit factor", "Net PnL", "Fees paid", "ROI"):
        assert label in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_fee_rate_override_changes_the_fees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "replay",
        "--signals",
        str(EXAMPLES / "signals_log.csv"),
        "--outcomes",
        str(EXAMPLES / "signal_outcomes.csv"),
        "--strategy",
        str(EXAMPLES / "BYBIT_OPTIMAL_CONFIG.json"),
        "--chart",
        str(tmp_path / "c.png"),
        "--fee-rate",
        "0",
    ]
    assert main(args) == 0
    assert "Fees paid                0.00 USDT" in capsys.readouterr().out


def test_cli_missing_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "replay",
            "--signals",
            str(tmp_path / "nope.csv"),
            "--outcomes",
            str(EXAMPLES / "signal_outcomes.csv"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "nope.csv" in err
