"""Replay over the bundled sample data: counts, honest fees, and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from trader.__main__ import main
from trader.errors import ConfigError
from trader.models import CloseReason, Instrument, Signal
from trader.pnl import taker_fee
from trader.replay import (
    PricePath,
    ReplayResult,
    load_instruments,
    load_outcomes,
    load_signals,
    replay,
)
from trader.strategy import Strategy, load_strategy

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


# --- the running totals replay keeps (issue 11): the same figures as summing afresh ----------

T0 = datetime(2025, 10, 19, 23, 40, tzinfo=UTC)


def held_signal(ident: str, at: datetime, symbol: str, price: str, ttl: int) -> Signal:
    return Signal(
        id=ident,
        timestamp=at,
        symbol=symbol,
        verdict="BUY",
        confidence=Decimal("0.9"),
        entry_price=Decimal(price),
        ttl_minutes=ttl,
    )


def flat(signal: Signal, final: str | None = None) -> dict[tuple[datetime, str, str], PricePath]:
    """A path that reaches neither SL nor TP: held to its TTL, exited at ``final``."""
    assert signal.entry_price is not None
    end = Decimal(final) if final is not None else signal.entry_price
    path = PricePath(max(signal.entry_price, end), min(signal.entry_price, end), end)
    return {(signal.timestamp, signal.symbol, signal.verdict): path}


def test_positions_due_at_the_same_moment_close_in_the_order_they_opened() -> None:
    signals = [held_signal(s, T0, s, "100", 15) for s in ("CCCUSDT", "AAAUSDT", "BBBUSDT")]
    paths = {k: v for s in signals for k, v in flat(s).items()}
    result = replay(signals, paths, Strategy(), {})
    assert [t.symbol for t in result.trades] == ["CCCUSDT", "AAAUSDT", "BBBUSDT"]


def test_a_loss_of_yesterday_does_not_count_against_today() -> None:
    strategy = Strategy(max_daily_loss_usdt=Decimal(5))
    losing = held_signal("loss", T0, "AAAUSDT", "100", 5)  # closes at 23:45, ~-20 USDT
    same_day = held_signal("late", T0 + timedelta(minutes=10), "BBBUSDT", "100", 5)
    next_day = held_signal("next", T0 + timedelta(minutes=25), "CCCUSDT", "100", 5)
    paths = {**flat(losing, "98"), **flat(same_day), **flat(next_day)}
    result = replay([losing, same_day, next_day], paths, strategy, {})
    assert result.outcomes == {"opened": 2, "rejected:daily_loss_limit": 1}
    assert [t.signal_id for t in result.trades] == ["loss", "next"]


def test_margin_in_use_after_a_close_is_summed_afresh_to_the_last_digit() -> None:
    # At 3x a margin has 28 digits, and (big + small) - big is not small once rounded: a
    # running total that subtracted a closed margin would free 3e-18 USDT too much, and
    # C (which needs exactly that much more than is free) would open.
    strategy = Strategy(
        leverage=3,
        sl_pct=Decimal(200),
        fee_rate=Decimal(0),
        position_size_usdt=Decimal(10) ** 10,
        max_position_size_usdt=Decimal(10) ** 10,
        max_daily_loss_usdt=Decimal(10) ** 11,
        paper_balance_usdt=Decimal(10) ** 10 + 1,
    )

    def instrument(symbol: str, tick: str, max_qty: int) -> Instrument:
        return Instrument(
            symbol, Decimal(tick), Decimal(1), Decimal(1), Decimal(max_qty), Decimal(0)
        )

    instruments = {
        "AAAUSDT": instrument("AAAUSDT", "1E-10", 10**12),  # 3e10 @ 1: margin 1e10
        "BBBUSDT": instrument("BBBUSDT", "1E-4", 1),  # 1 @ 1: margin 0.333…3 (28 digits)
        "CCCUSDT": instrument("CCCUSDT", "1E-17", 1),  # 1 @ 5.00000000000000001
    }
    a = held_signal("a", T0, "AAAUSDT", "1", 5)  # loses 9,999,999,999: the wallet is 2 after
    b = held_signal("b", T0 + timedelta(seconds=1), "BBBUSDT", "1", 60)
    c = held_signal("c", T0 + timedelta(minutes=10), "CCCUSDT", "5.00000000000000001", 60)
    paths = {**flat(a, "0.6666666667"), **flat(b), **flat(c)}
    result = replay([a, b, c], paths, strategy, instruments)
    # Free: 2 - 0.3333333333333333333333333333 = 1.666666666666666666666666667 (rounded);
    # C needs 5.00000000000000001 / 3 = 1.66666666666666667, which is more.
    assert result.outcomes == {"opened": 2, "failed:insufficient_balance": 1}


def test_an_outcome_row_cut_short_is_a_config_error_naming_its_line(tmp_path: Path) -> None:
    outcomes = tmp_path / "signal_outcomes.csv"
    outcomes.write_text(
        "timestamp_sent,symbol,verdict,highest_reached,lowest_reached,final_price\n"
        "2025-10-19 05:25:03,ETHUSDT,SELL,3910.0,3904.44,3904.44\n"
        "2025-10-19 05:25:04,BNBUSDT\n"
    )
    with pytest.raises(ConfigError, match=r"signal_outcomes\.csv:3: bad outcome row"):
        load_outcomes(outcomes)
