"""``trades_log.csv`` at start: checked cheaply against the database (row count and last row),
left alone when it matches, and rebuilt from the database, in booking order, when not."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from storage.export import append_trade, mirror_matches, rewrite_trades
from storage.repositories import SqliteRepositories
from tests.unit.storage_support import repo, store_trades
from trader.models import ClosedTrade, CloseReason, Side

__all__ = ["repo"]  # the fixture, used by name

T0 = datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)


def make_trade(index: int, *, signal_id: str = "", minute: int | None = None) -> ClosedTrade:
    closed = T0 + timedelta(minutes=index if minute is None else minute)
    return ClosedTrade(
        signal_id=signal_id or f"sig-{index}",
        symbol="SOLUSDT",
        side=Side.SELL,
        qty=Decimal("12.3"),
        entry_price=Decimal("187.45"),
        exit_price=Decimal("185.2"),
        leverage=50,
        margin=Decimal("100"),
        entry_fee=Decimal("1.26807425"),
        exit_fee=Decimal("1.252878"),
        gross_pnl=Decimal("27.675"),
        net_pnl=Decimal("25.15404775") + index,
        reason=CloseReason.TAKE_PROFIT,
        opened_at=closed - timedelta(minutes=15),
        closed_at=closed,
    )


def appended(path: Path, trades: list[ClosedTrade]) -> Path:
    for trade in trades:
        append_trade(path, trade)
    return path


def test_an_appended_mirror_matches_its_trades(tmp_path: Path) -> None:
    trades = [make_trade(i) for i in range(3)]
    path = appended(tmp_path / "trades_log.csv", trades)
    assert mirror_matches(path, 3, trades[-1])


def test_a_mirror_that_missed_the_last_trade_does_not_match(tmp_path: Path) -> None:
    # A crash between the trade's commit and its row.
    trades = [make_trade(i) for i in range(3)]
    path = appended(tmp_path / "trades_log.csv", trades[:2])
    assert not mirror_matches(path, 3, trades[-1])
    assert not mirror_matches(path, 2, trades[-1])


def test_a_row_cut_short_does_not_match(tmp_path: Path) -> None:
    trades = [make_trade(i) for i in range(3)]
    path = appended(tmp_path / "trades_log.csv", trades)
    path.write_bytes(path.read_bytes()[:-7])
    assert not mirror_matches(path, 3, trades[-1])


def test_an_edited_last_row_does_not_match(tmp_path: Path) -> None:
    trades = [make_trade(i) for i in range(3)]
    path = appended(tmp_path / "trades_log.csv", trades)
    path.write_text(path.read_text().replace("sig-2", "sig-X"))
    assert not mirror_matches(path, 3, trades[-1])


def test_a_missing_or_headless_file_does_not_match(tmp_path: Path) -> None:
    path = tmp_path / "trades_log.csv"
    assert not mirror_matches(path, 0, None)
    path.write_text("")
    assert not mirror_matches(path, 0, None)
    trades = [make_trade(0)]
    appended(path, trades)
    path.write_text(path.read_text().replace("closed_at,", "closed,"))
    assert not mirror_matches(path, 1, trades[0])


def test_a_header_alone_matches_no_trades(tmp_path: Path) -> None:
    path = tmp_path / "trades_log.csv"
    rewrite_trades(path, [])
    assert mirror_matches(path, 0, None)
    assert not mirror_matches(path, 1, make_trade(0))


def test_a_quoted_line_break_counts_as_one_row(tmp_path: Path) -> None:
    trades = [make_trade(0, signal_id="odd\nid"), make_trade(1), make_trade(2, signal_id='"q"')]
    path = appended(tmp_path / "trades_log.csv", trades)
    assert mirror_matches(path, 3, trades[-1])
    assert not mirror_matches(path, 4, trades[-1])


async def test_export_rewrites_the_mirror_in_booking_order(
    repo: SqliteRepositories, tmp_path: Path
) -> None:
    # Booked in this order, closed in another: the mirror follows the booking, as appends do.
    trades = [make_trade(0, minute=9), make_trade(1, minute=3), make_trade(2, minute=6)]
    await store_trades(repo, trades)
    path = tmp_path / "trades_log.csv"
    path.write_text("stale\n")
    await repo.export_trades(path)
    assert path.read_bytes() == appended(tmp_path / "appended.csv", trades).read_bytes()
    assert (await repo.trade_count(), await repo.last_trade()) == (3, replace(trades[-1], id=3))
    assert mirror_matches(path, 3, await repo.last_trade())
