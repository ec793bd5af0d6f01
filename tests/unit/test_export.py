"""``trades_log.csv``: the header, appended rows, and the atomic rebuild from the database.

Files live under ``tmp_path``; the CSV is read back with the csv module as a consumer would.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from storage.export import COLUMNS, append_trade, rewrite_trades
from trader.models import ClosedTrade, CloseReason, Side

T0 = datetime(2025, 10, 19, 5, 25, 3, 250_000, tzinfo=UTC)
HEADER = (
    "closed_at,opened_at,symbol,side,qty,entry_price,exit_price,leverage,margin,"
    "entry_fee,exit_fee,gross_pnl,net_pnl,reason,signal_id"
)


def make_trade(index: int = 0, *, side: Side = Side.BUY) -> ClosedTrade:
    return ClosedTrade(
        signal_id=f"sig-{index}",
        symbol="SOLUSDT",
        side=side,
        qty=Decimal("12.3"),
        entry_price=Decimal("187.45"),
        exit_price=Decimal("185.2"),
        leverage=50,
        margin=Decimal("1E+2"),
        entry_fee=Decimal("1.26807425"),
        exit_fee=Decimal("1.252878"),
        gross_pnl=Decimal("-27.675"),
        net_pnl=Decimal("-30.19595225"),
        reason=CloseReason.STOP_LOSS,
        opened_at=T0,
        closed_at=T0 + timedelta(minutes=5 + index),
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_first_append_writes_the_header(tmp_path: Path) -> None:
    path = tmp_path / "data" / "trades_log.csv"
    append_trade(path, make_trade())

    assert path.read_text(encoding="utf-8").splitlines()[0] == HEADER
    assert tuple(HEADER.split(",")) == COLUMNS
    [row] = read_rows(path)
    assert row == {
        "closed_at": "2025-10-19 05:30:03",
        "opened_at": "2025-10-19 05:25:03",
        "symbol": "SOLUSDT",
        "side": "LONG",
        "qty": "12.3",
        "entry_price": "187.45",
        "exit_price": "185.2",
        "leverage": "50",
        "margin": "100",  # fixed-point, never '1E+2'
        "entry_fee": "1.26807425",
        "exit_fee": "1.252878",
        "gross_pnl": "-27.675",
        "net_pnl": "-30.19595225",
        "reason": "SL",
        "signal_id": "sig-0",
    }


def test_later_appends_add_rows_only(tmp_path: Path) -> None:
    path = tmp_path / "trades_log.csv"
    for index in range(3):
        append_trade(path, make_trade(index, side=Side.SELL))

    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines.count(HEADER) == 1
    rows = read_rows(path)
    assert [r["signal_id"] for r in rows] == ["sig-0", "sig-1", "sig-2"]
    assert {r["side"] for r in rows} == {"SHORT"}


def test_append_to_an_empty_file_writes_the_header(tmp_path: Path) -> None:
    path = tmp_path / "trades_log.csv"
    path.touch()
    append_trade(path, make_trade())
    assert path.read_text(encoding="utf-8").splitlines()[0] == HEADER
    assert len(read_rows(path)) == 1


def test_append_after_a_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "trades_log.csv"
    append_trade(path, make_trade(0))
    with path.open("a", encoding="utf-8") as handle:
        handle.write("2025-10-19 05:40:00,2025-10-19")  # a crash mid-row
    append_trade(path, make_trade(1))

    last = path.read_text(encoding="utf-8").splitlines()[-1]
    assert last.startswith("2025-10-19 05:31:03,")
    assert last.endswith(",sig-1")


def test_rewrite_replaces_the_mirror_with_the_given_trades(tmp_path: Path) -> None:
    path = tmp_path / "trades_log.csv"
    path.write_text("stale,content\n1,2\n", encoding="utf-8")
    trades = [make_trade(i) for i in range(4)]
    rewrite_trades(path, trades)

    assert [r["signal_id"] for r in read_rows(path)] == ["sig-0", "sig-1", "sig-2", "sig-3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trades_log.csv"]  # no temp left


def test_rewrite_and_appends_produce_the_same_file(tmp_path: Path) -> None:
    appended, rewritten = tmp_path / "a.csv", tmp_path / "b.csv"
    trades = [make_trade(i) for i in range(3)]
    for trade in trades:
        append_trade(appended, trade)
    rewrite_trades(rewritten, trades)
    assert appended.read_bytes() == rewritten.read_bytes()


def test_rewrite_with_no_trades_leaves_only_the_header(tmp_path: Path) -> None:
    path = tmp_path / "new" / "trades_log.csv"
    rewrite_trades(path, [])
    assert path.read_text(encoding="utf-8").splitlines() == [HEADER]


def test_failed_rewrite_keeps_the_old_mirror(tmp_path: Path) -> None:
    path = tmp_path / "trades_log.csv"
    append_trade(path, make_trade(0))
    before = path.read_bytes()

    def trades_then_failure() -> Iterator[ClosedTrade]:
        yield make_trade(1)
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="went away"):
        rewrite_trades(path, trades_then_failure())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trades_log.csv"]
