"""The positions and trades repository: exact decimals, one open position per symbol,
closing a position into a trade (once, and all or nothing), and the trade reads the
status and stats use, in UTC and fast at ten thousand trades.

Each test opens its own database under ``tmp_path``; nothing is mocked.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from storage.codec import to_db_time
from storage.positions import PositionAlreadyOpen, PositionNotOpen
from storage.repositories import SqliteRepositories
from tests.unit.storage_support import T0, make_position, make_trade, repo, store_trade

__all__ = ["repo"]  # fixtures


# -- positions -------------------------------------------------------------------------------


async def test_position_round_trips_with_exact_decimals(repo: SqliteRepositories) -> None:
    stored = await repo.add_position(make_position())
    assert stored.id is not None
    assert await repo.open_positions() == [stored]
    assert stored == replace(make_position(), id=stored.id)
    assert all(p.opened_at.tzinfo is UTC for p in await repo.open_positions())


async def test_only_one_position_per_symbol_can_be_open(repo: SqliteRepositories) -> None:
    await repo.add_position(make_position("SOLUSDT"))
    with pytest.raises(PositionAlreadyOpen, match="SOLUSDT"):
        await repo.add_position(make_position("SOLUSDT", signal_id="sig-2"))
    await repo.add_position(make_position("ETHUSDT", signal_id="sig-3"))
    assert sorted(p.symbol for p in await repo.open_positions()) == ["ETHUSDT", "SOLUSDT"]


async def test_closing_moves_the_position_into_the_trades(repo: SqliteRepositories) -> None:
    position = await repo.add_position(make_position())
    assert position.id is not None
    trade = await repo.close_position(position.id, make_trade())

    assert trade.id is not None
    assert await repo.open_positions() == []
    assert await repo.all_trades() == [trade]
    assert trade == replace(make_trade(), id=trade.id)
    # The symbol is free again, and the new position never reuses the old id.
    again = await repo.add_position(make_position())
    assert again.id is not None
    assert again.id > position.id


async def test_closing_a_closed_position_twice_records_one_trade(
    repo: SqliteRepositories,
) -> None:
    position = await repo.add_position(make_position())
    assert position.id is not None
    await repo.close_position(position.id, make_trade())
    with pytest.raises(PositionNotOpen):
        await repo.close_position(position.id, make_trade())
    assert await repo.trade_count() == 1


async def test_failed_close_leaves_the_position_open(repo: SqliteRepositories) -> None:
    position = await repo.add_position(make_position())
    assert position.id is not None
    # The naive time fails after the DELETE has run inside the transaction.
    broken = replace(make_trade(), closed_at=datetime(2025, 10, 19, 6, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        await repo.close_position(position.id, broken)

    assert await repo.open_positions() == [position]
    assert await repo.all_trades() == []
    with pytest.raises(ValueError, match="ETHUSDT"):
        await repo.close_position(position.id, make_trade("ETHUSDT"))
    assert await repo.open_positions() == [position]


# -- trades ----------------------------------------------------------------------------------


async def test_trades_are_read_in_close_order(repo: SqliteRepositories) -> None:
    times = [T0 + timedelta(hours=h) for h in (3, 1, 2)]
    for index, closed_at in enumerate(times):
        await store_trade(repo, make_trade(closed_at=closed_at, signal_id=f"s{index}"))

    assert [t.signal_id for t in await repo.all_trades()] == ["s1", "s2", "s0"]
    assert [t.signal_id for t in await repo.recent_trades(2)] == ["s0", "s2"]
    assert await repo.recent_trades(0) == []
    since = await repo.trades_closed_since(T0 + timedelta(hours=2))  # inclusive bound
    assert [t.signal_id for t in since] == ["s2", "s0"]
    assert await repo.trade_count() == 3


async def test_times_in_other_zones_are_stored_as_utc(repo: SqliteRepositories) -> None:
    moscow = timezone(timedelta(hours=3))
    # 09:00+03:00 is 06:00 UTC: earlier than 07:00 UTC although its wall clock is later.
    await store_trade(
        repo, make_trade(closed_at=datetime(2025, 10, 19, 9, 0, tzinfo=moscow), signal_id="a")
    )
    await store_trade(
        repo, make_trade(closed_at=datetime(2025, 10, 19, 7, 0, tzinfo=UTC), signal_id="b")
    )
    trades = await repo.all_trades()
    assert [t.signal_id for t in trades] == ["a", "b"]
    assert trades[0].closed_at == datetime(2025, 10, 19, 6, 0, tzinfo=UTC)
    assert trades[0].closed_at.tzinfo is UTC
    assert to_db_time(trades[0].closed_at) == "2025-10-19T06:00:00.000000+00:00"


async def test_net_pnl_total_is_exact(repo: SqliteRepositories) -> None:
    assert await repo.net_pnl_total() == Decimal(0)
    for index, pnl in enumerate(["0.1", "0.2", "-0.30000001"]):
        await store_trade(repo, make_trade(net_pnl=Decimal(pnl), signal_id=f"s{index}"))
    assert await repo.net_pnl_total() == Decimal("-0.00000001")


async def test_status_queries_stay_fast_with_ten_thousand_trades(
    repo: SqliteRepositories,
) -> None:
    # Seeded in one statement: going through close_position 10,000 times would test the
    # seeding, not the reads.
    rows = [
        (i, f"s{i}", "BTCUSDT", "Buy", "0.001", "60000", "60100", 10, "6", "0.033", "0.033",
         "0.1", "0.034", "TP", to_db_time(T0), to_db_time(T0 + timedelta(minutes=i)))
        for i in range(10_000)
    ]  # fmt: skip
    async with repo.database.transaction() as conn:
        await conn.executemany(
            "INSERT INTO trades (position_id, signal_id, symbol, side, qty, entry_price,"
            " exit_price, leverage, margin, entry_fee, exit_fee, gross_pnl, net_pnl, reason,"
            " opened_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    async with repo.database.read() as conn:
        plan = await conn.execute_fetchall(
            "EXPLAIN QUERY PLAN SELECT * FROM trades WHERE closed_at >= ? ORDER BY closed_at, id",
            (to_db_time(T0),),
        )
    assert any("trades_closed_at" in row[3] for row in plan)

    started = time.perf_counter()
    today = await repo.trades_closed_since(T0 + timedelta(minutes=10_000 - 1440))
    count = await repo.trade_count()
    last = await repo.recent_trades(10)
    elapsed = time.perf_counter() - started
    assert (len(today), count, last[0].signal_id) == (1440, 10_000, "s9999")
    assert await repo.net_pnl_total() == Decimal("340.000")
    assert len(await repo.all_trades()) == 10_000
    assert elapsed < 1.0  # about 20 ms on a laptop; the bound only catches a table scan
