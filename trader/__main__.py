"""Command line of the engine package: ``python -m trader replay ...`` (offline what-if).

Prints the replay table and writes the equity-curve PNG; needs no keys and no network.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from trader import take_profits
from trader.charts import equity_png, write_equity_png
from trader.errors import ConfigError
from trader.pnl import equity_curve
from trader.replay import ReplayResult, load_instruments, load_outcomes, load_signals, replay
from trader.strategy import Strategy, load_strategy

DEFAULT_INSTRUMENTS = Path(__file__).resolve().parent.parent / "examples" / "instruments.json"


def _fee_rate(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not Decimal(0) <= value < Decimal("0.01"):
        raise argparse.ArgumentTypeError("must be at least 0 and below 0.01 (e.g. 0.00055)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trader")
    commands = parser.add_subparsers(dest="command", required=True)
    rep = commands.add_parser("replay", help="what a signal log would have made, offline")
    rep.add_argument("--signals", type=Path, required=True, help="a signal log (CSV)")
    rep.add_argument("--outcomes", type=Path, required=True, help="signal_outcomes.csv")
    rep.add_argument("--strategy", type=Path, help="strategy file (default: built-in)")
    rep.add_argument("--fee-rate", type=_fee_rate, help="taker fee rate, e.g. 0.00055")
    rep.add_argument(
        "--instruments",
        type=Path,
        default=DEFAULT_INSTRUMENTS,
        help="instrument filters in Bybit's instruments-info shape",
    )
    rep.add_argument(
        "--chart",
        type=Path,
        default=Path("replay_equity.png"),
        help="where to write the equity-curve PNG",
    )
    rep.add_argument("--trades", action="store_true", help="list every trade")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        strategy = load_strategy(args.strategy) if args.strategy else Strategy()
        if args.fee_rate is not None:
            strategy = replace(strategy, fee_rate=args.fee_rate)
        for path in (args.signals, args.outcomes):
            if not path.exists():
                raise ConfigError(f"{path}: no such file")
        started = time.perf_counter()
        records = load_signals(args.signals)
        result = replay(
            records, load_outcomes(args.outcomes), strategy, load_instruments(args.instruments)
        )
        elapsed = time.perf_counter() - started
    except ConfigError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    print(format_report(result, strategy, args.signals, list_trades=args.trades))
    png = equity_png(
        equity_curve(result.trades, strategy.paper_balance_usdt),
        starting_balance=strategy.paper_balance_usdt,
        title="Replay: equity after each closed trade",
        subtitle=(
            f"{args.signals.name}: {result.stats.trades} trades, "
            f"net {result.stats.net_pnl:+.2f} USDT after {result.stats.fees:.2f} fees"
        ),
    )
    write_equity_png(args.chart, png)
    print(f"Equity curve: {args.chart}")
    print(
        f"Replayed {result.signals} signals in {elapsed * 1000:.0f} ms "
        f"({result.signals / elapsed:,.0f} signals/s)"
    )
    return 0


def _pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def format_report(
    result: ReplayResult, strategy: Strategy, source: Path, *, list_trades: bool = False
) -> str:
    stats = result.stats
    sl_move = strategy.sl_pct / strategy.leverage
    tp_move = strategy.tp_pct / strategy.leverage
    # With take-profits the plan replaces parameters.tp: the exit rule line says what it is.
    tp = "" if strategy.take_profits else f" / TP {strategy.tp_pct}%"
    tp_price = "" if strategy.take_profits else f" / {tp_move:.2f}%"
    lines = [
        f"Replay of {source} — {result.signals} rows, {result.unique} distinct signals",
        f"Strategy: {strategy.leverage}x, margin {strategy.position_size_usdt} USDT, "
        f"SL {strategy.sl_pct}%{tp} of margin ({sl_move:.2f}%{tp_price} price move), "
        f"taker fee {strategy.fee_rate * 100:.3f}% on notional at entry and exit",
        *(f"Exit rule: {rule}" for rule in result.rules),
        "",
        "Outcomes:",
    ]
    for outcome, count in sorted(result.outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {outcome:<32} {count:>5}")
    if list_trades:
        lines += [
            "",
            f"{'closed (UTC)':<17} {'symbol':<10} {'side':<5} {'qty':>12} "
            f"{'entry':>12} {'exit':>12} {'why':<4} {'fees':>8} {'net PnL':>9}",
        ]
        for t in result.trades:
            lines.append(
                f"{t.closed_at:%Y-%m-%d %H:%M} {t.symbol:<10} {t.side.label:<5} {t.qty:>12} "
                f"{t.entry_price:>12} {t.exit_price:>12} {t.reason.value:<4} "
                f"{t.fees:>8.2f} {t.net_pnl:>+9.2f}"
            )
    by_reason: dict[str, int] = {}
    for t in result.trades:
        by_reason[t.reason.value] = by_reason.get(t.reason.value, 0) + 1
    pf = stats.profit_factor
    rows = [
        ("Trades", f"{stats.trades}"),
        ("Exits", ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items())) or "none"),
        *_tp_rows(result, strategy),
        ("Wins", f"{stats.wins}"),
        ("Win rate", _pct(stats.win_rate)),
        ("Profit factor", "n/a" if pf is None else f"{pf:.2f}"),
        ("Gross PnL (before fees)", f"{stats.net_pnl + stats.fees:+.2f} USDT"),
        ("Fees paid", f"{stats.fees:.2f} USDT"),
        ("Net PnL", f"{stats.net_pnl:+.2f} USDT"),
        ("ROI", f"{_pct(stats.roi)} of {stats.starting_balance} USDT"),
        ("Max drawdown", f"{stats.max_drawdown:.2f} USDT"),
    ]
    lines += ["", *(f"  {name:<24} {value}" for name, value in rows)]
    return "\n".join(lines)


def _tp_rows(result: ReplayResult, strategy: Strategy) -> list[tuple[str, str]]:
    """With several take-profits: how many positions filled each (the "Exits" line names
    the last part's exit only)."""
    if not take_profits.uses_plan(strategy):
        return []
    fills = ", ".join(f"TP{n} {count}" for n, count in enumerate(result.tp_fills, 1))
    return [("Take-profits filled", f"{fills or 'none'} (positions)")]


if __name__ == "__main__":
    sys.exit(main())
