"""``make bench``, replay at the scale of a year: a 300k-row signal log replayed with a balance
large enough that trades keep opening, so the closed-trade history grows all the way through.

The log is the bundled sample (``examples/signals_log.csv`` and its outcomes) repeated with
fresh signal ids, each copy shifted in time after the previous one. Reports rows/s and seconds
for reading the files and for the replay itself. Uses only ``load_signals``, ``load_outcomes``
and ``replay``, so it measures older code too: ``PYTHONPATH=/work/before python -m
benchmarks.replay_scale``.
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchmarks.common import EXAMPLES
from trader.replay import load_instruments, load_outcomes, load_signals, replay
from trader.strategy import load_strategy

ROWS = 300_000
TARGET_SECONDS = 5.0
FORMAT = "%Y-%m-%d %H:%M:%S"


def _time(text: str) -> datetime:
    return datetime.strptime(text, FORMAT).replace(tzinfo=UTC)


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or ()), list(reader)


def write_scaled_log(work: Path, rows: int) -> tuple[Path, Path]:
    """The sample log and its outcomes repeated to ``rows`` rows: copy k gets ids ``<id>-k``
    and times shifted by k whole days-spans, so every copy has its own UTC days."""
    signal_fields, signals = _read(EXAMPLES / "signals_log.csv")
    outcome_fields, outcomes = _read(EXAMPLES / "signal_outcomes.csv")
    times = [_time(row["timestamp"]) for row in signals]
    shift = timedelta(days=(max(times) - min(times)).days + 1)
    signals_path, outcomes_path = work / "signals_log.csv", work / "signal_outcomes.csv"
    with (
        signals_path.open("w", newline="", encoding="utf-8") as signals_out,
        outcomes_path.open("w", newline="", encoding="utf-8") as outcomes_out,
    ):
        signal_writer = csv.DictWriter(signals_out, signal_fields)
        outcome_writer = csv.DictWriter(outcomes_out, outcome_fields)
        signal_writer.writeheader()
        outcome_writer.writeheader()
        written, copy = 0, 0
        while written < rows:
            offset = shift * copy
            for row in signals[: rows - written]:
                sent = _time(row["timestamp"]) + offset
                ident = f"{row['signal_id']}-{copy}" if row["signal_id"] else ""
                signal_writer.writerow(
                    {**row, "timestamp": sent.strftime(FORMAT), "signal_id": ident}
                )
            for row in outcomes:
                sent = _time(row["timestamp_sent"]) + offset
                outcome_writer.writerow({**row, "timestamp_sent": sent.strftime(FORMAT)})
            written += min(len(signals), rows - written)
            copy += 1
    return signals_path, outcomes_path


def replay_scale(rows: int = ROWS) -> tuple[float, float, int, int]:
    """Seconds to read the files, seconds to replay, rows, trades."""
    strategy = load_strategy(EXAMPLES / "BYBIT_OPTIMAL_CONFIG.json")
    # A balance no run can spend, so entries keep opening and the history keeps growing.
    strategy = replace(strategy, paper_balance_usdt=Decimal(10) ** 12)
    instruments = load_instruments(EXAMPLES / "instruments.json")
    with tempfile.TemporaryDirectory() as tmp:
        signals_path, outcomes_path = write_scaled_log(Path(tmp), rows)
        started = time.perf_counter()
        records = load_signals(signals_path)
        paths = load_outcomes(outcomes_path)
        loaded = time.perf_counter()
        result = replay(records, paths, strategy, instruments)
        done = time.perf_counter()
    return loaded - started, done - loaded, result.signals, result.stats.trades


def main() -> int:
    load_s, replay_s, rows, trades = replay_scale()
    total = load_s + replay_s
    print(f"replay of a {rows:,}-row log with a large balance ({trades:,} trades):")
    print(
        f"  replay {replay_s:.2f} s ({rows / replay_s:,.0f} rows/s)   "
        f"reading the files {load_s:.2f} s   total {total:.2f} s "
        f"({rows / total:,.0f} rows/s)   (target replay < {TARGET_SECONDS:.0f} s)"
    )
    return 0 if replay_s < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
