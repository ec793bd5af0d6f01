"""``trades_log.csv``: a CSV mirror of the closed trades, for the signal generator's tools.

The database is the source of truth. The mirror is appended per trade, in the order the
trades are booked; at start it is checked cheaply and rebuilt only when it does not match.
"""

from __future__ import annotations

import csv
import os
import stat
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

from trader.models import ClosedTrade

TRADES_LOG_NAME = "trades_log.csv"
TAIL_BYTES = 1 << 16  # the end of the file read for its last row: far more than a row

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


def mirror_matches(csv_path: Path, count: int, last: ClosedTrade | None) -> bool:
    """Whether the mirror holds ``count`` trades under the header, ``last`` (the trade booked
    last) in its last row, every row complete. What goes wrong in practice fails this: a
    crash between a trade's commit and its row, a truncated or deleted file, a stray edit at
    the end. One pass counting line ends; the CSV is parsed in full only when a quoted field
    could hold a line break."""
    try:
        with csv_path.open("rb") as handle:
            head = handle.readline()
            lines, tail = 1, head
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                lines += chunk.count(b"\n")
                tail = (tail + chunk)[-TAIL_BYTES:]
    except FileNotFoundError:
        return False
    if _cells(head) != list(COLUMNS) or not tail.endswith(b"\n"):
        return False  # no header, or a row cut short by a crash
    if last is None or count == 0:
        return last is None and count == 0 and lines == 1
    body = tail[:-1].removesuffix(b"\r")
    if b'"' not in tail and lines == count + 1 and b"\n" in body:
        return _cells(body.rpartition(b"\n")[2]) == trade_row(last)
    return _parsed_matches(csv_path, count, trade_row(last))


def _cells(line: bytes) -> list[str] | None:
    rows = list(csv.reader(StringIO(line.decode("utf-8", errors="replace"))))
    return rows[0] if len(rows) == 1 else None


def _parsed_matches(csv_path: Path, count: int, expected: list[str]) -> bool:
    """The same check through the CSV parser, for rows with quoted line breaks."""
    rows, last = -1, None  # the header is not a trade
    with csv_path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.reader(handle):
            rows, last = rows + 1, row
    return rows == count and last == expected
