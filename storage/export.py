"""``trades_log.csv``: a CSV mirror of the closed trades, for the signal generator's tools.

The database is the source of truth; the mirror is appended per trade and rebuilt at start.
"""

from __future__ import annotations

import csv
import os
import stat
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from trader.models import ClosedTrade

TRADES_LOG_NAME = "trades_log.csv"

COLUMNS = (
    "closed_at",
    "opened_at",
    "symbol",
    "side",
    "qty",
    "entry_price",
    "exit_price",
    "leverage",
    "margin",
    "entry_fee",
    "exit_fee",
    "gross_pnl",
    "net_pnl",
    "reason",
    "signal_id",
)


def _time(value: datetime) -> str:
    # The signal log's own time format (UTC), so the generator's tools parse both alike.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _money(value: Decimal) -> str:
    # Fixed-point, never '1E+2': exact, and readable by any CSV consumer.
    return format(value, "f")


def trade_row(trade: ClosedTrade) -> list[str]:
    """The CSV cells of one trade, in ``COLUMNS`` order."""
    return [
        _time(trade.closed_at),
        _time(trade.opened_at),
        trade.symbol,
        trade.side.label,
        _money(trade.qty),
        _money(trade.entry_price),
        _money(trade.exit_price),
        str(trade.leverage),
        _money(trade.margin),
        _money(trade.entry_fee),
        _money(trade.exit_fee),
        _money(trade.gross_pnl),
        _money(trade.net_pnl),
        trade.reason.value,
        trade.signal_id,
    ]


def append_trade(csv_path: Path, trade: ClosedTrade) -> None:
    """Append one trade, writing the header first when the file is new or empty."""
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    size = csv_path.stat().st_size if csv_path.exists() else 0
    needs_newline = False
    if size > 0:
        # A write cut short by a crash leaves a partial last line; never glue a row onto it.
        with csv_path.open("rb") as existing:
            existing.seek(-1, os.SEEK_END)
            needs_newline = existing.read(1) not in (b"\n", b"\r")
    with csv_path.open("a", newline="", encoding="utf-8") as handle:
        if needs_newline:
            handle.write("\r\n")
        writer = csv.writer(handle)
        if size == 0:
            writer.writerow(COLUMNS)
        writer.writerow(trade_row(trade))


def rewrite_trades(csv_path: Path, trades: Iterable[ClosedTrade]) -> None:
    """Replace the whole mirror with ``trades`` (oldest first), atomically.

    Readers see either the old file or the new one, never a half-written one.
    """
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file sits next to the target: os.replace is only atomic on one filesystem.
    fd, temp_name = tempfile.mkstemp(
        dir=csv_path.parent, prefix=f".{csv_path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(trade_row(trade) for trade in trades)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file owner-only; keep the mirror as readable as it was.
        mode = stat.S_IMODE(csv_path.stat().st_mode) if csv_path.exists() else 0o644
        os.chmod(temp_name, mode)
        os.replace(temp_name, csv_path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
