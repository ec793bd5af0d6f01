"""The SQLite storage: migrations, WAL, and every repository method against a real file.

Each test opens its own database under ``tmp_path``; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import aiosqlite
import pytest

from storage.codec import to_db_time
from storage.db import (
    Database,
    Migration,
    MigrationError,
    db_path_for,
    load_migrations,
    open_database,
    split_statements,
)
from storage.positions import PositionAlreadyOpen, PositionNotOpen
from storage.repositories import SqliteRepositories
from trader.models import ClosedTrade, CloseReason, Fill, InvalidSignal, Position, Side, Signal
from trader.ports import Confirmation, NewMessage, OrderRecord, OrderStatus, Repositories

T0 = datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[SqliteRepositories]:
    repositories = await SqliteRepositories.open(tmp_path / "paper.db")
    yield repositories
    await repositories.close()


def make_signal(signal_id: str = "sig-1", *, symbol: str = "SOLUSDT") -> Signal:
    return Signal(
        id=signal_id,
        timestamp=T0,
        symbol=symbol,
        verdict="BUY",
        confidence=Decimal("0.89"),
        entry_price=Decimal("3906.26"),
        ttl_minutes=15,
        target_min=Decimal("3889.5301142857147"),
        target_max=Decimal("3897.8950571428572"),
    )


def make_position(symbol: str = "SOLUSDT", *, signal_id: str = "sig-1") -> Position:
    return Position(
        signal_id=signal_id,
        symbol=symbol,
        side=Side.SELL,
        qty=Decimal("12.3"),
        entry_price=Decimal("187.45"),
        leverage=50,
        margin=Decimal("100"),
        stop_loss=Decimal("188.95"),
        take_profit=Decimal("185.20"),
        entry_fee=Decimal("1.26807425"),
        opened_at=T0,
        expires_at=T0 + timedelta(minutes=30),
        link_id="e-sig-1",
    )


def make_trade(
    symbol: str = "SOLUSDT",
    *,
    closed_at: datetime = T0 + timedelta(minutes=5),
    net_pnl: Decimal = Decimal("25.01"),
    signal_id: str = "sig-1",
) -> ClosedTrade:
    return ClosedTrade(
        signal_id=signal_id,
        symbol=symbol,
        side=Side.SELL,
        qty=Decimal("12.3"),
        entry_price=Decimal("187.45"),
        exit_price=Decimal("185.20"),
        leverage=50,
        margin=Decimal("100"),
        entry_fee=Decimal("1.26807425"),
        exit_fee=Decimal("1.2528780"),
        gross_pnl=Decimal("27.675"),
        net_pnl=net_pnl,
        reason=CloseReason.TAKE_PROFIT,
        opened_at=T0,
        closed_at=closed_at,
    )


async def store_trade(repo: SqliteRepositories, trade: ClosedTrade) -> ClosedTrade:
    position = await repo.add_position(make_position(trade.symbol, signal_id=trade.signal_id))
    assert position.id is not None
    return await repo.close_position(position.id, trade)


async def scalar(repo: SqliteRepositories, sql: str, params: tuple[object, ...] = ()) -> object:
    async with repo.database.read() as conn, conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return row[0]


# -- the database file and its schema ---------------------------------------------------


def test_each_mode_has_its_own_database_file(tmp_path: Path) -> None:
    assert db_path_for(tmp_path, "paper") == tmp_path / "paper.db"
    assert db_path_for(tmp_path, "live") == tmp_path / "live.db"
    with pytest.raises(ValueError, match="demo"):
        db_path_for(tmp_path, "demo")


async def test_empty_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "paper.db"
    db = await open_database(path)
    try:
        assert path.exists()
        latest = load_migrations()[-1].version
        assert await db.schema_version() == latest
        async with db.read() as conn:
            rows = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type='table'")
        tables = {row[0] for row in rows}
        assert {
            "schema_migrations",
            "signals",
            "orders",
            "fills",
            "positions",
            "trades",
            "settings",
            "outbox",
            "confirmations",
            "confirmation_messages",
        } <= tables
    finally:
        await db.close()


async def test_connection_runs_in_wal_mode_with_safe_pragmas(repo: SqliteRepositories) -> None:
    assert await scalar(repo, "PRAGMA journal_mode") == "wal"
    assert await scalar(repo, "PRAGMA synchronous") == 1  # NORMAL
    assert await scalar(repo, "PRAGMA foreign_keys") == 1
    assert await scalar(repo, "PRAGMA busy_timeout") == 5000


async def test_rerunning_migrations_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "paper.db"
    repo = await SqliteRepositories.open(path)
    await repo.set_setting("limit.max_positions", "7")
    version = await repo.database.schema_version()
    assert await repo.database.migrate() == version
    await repo.close()

    reopened = await SqliteRepositories.open(path)
    try:
        assert await reopened.database.schema_version() == version
        assert await scalar(reopened, "SELECT COUNT(*) FROM schema_migrations") == len(
            load_migrations()
        )
        assert await reopened.get_setting("limit.max_positions") == "7"
    finally:
        await reopened.close()


async def test_confirmations_of_version_1_move_to_their_messages_table(tmp_path: Path) -> None:
    connection = await aiosqlite.connect(tmp_path / "old.db", isolation_level=None)
    connection.row_factory = sqlite3.Row
    db = Database(connection, tmp_path / "old.db")
    try:
        assert await db.migrate(load_migrations()[:1]) == 1
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO confirmations (signal_id, chat_id, message_id, status, created_at,"
                " expires_at) VALUES ('s1', 42, 7, 'pending', ?, ?)",
                (to_db_time(T0), to_db_time(T0 + MINUTE)),
            )
        await db.migrate()
        repo = SqliteRepositories(db)
        assert await repo.confirmation_messages("s1") == [(42, 7)]
        pending = await repo.pending_confirmations()
        assert [(c.signal_id, c.status, c.expires_at) for c in pending] == [
            ("s1", "pending", T0 + MINUTE)
        ]
    finally:
        await db.close()


async def test_failed_migration_is_rolled_back_whole(repo: SqliteRepositories) -> None:
    db = repo.database
    base = await db.schema_version()
    good = Migration(base + 1, "extra", "CREATE TABLE extra (x TEXT);")
    broken = Migration(
        base + 2, "broken", "CREATE TABLE half (x TEXT);\nINSERT INTO missing VALUES (1);"
    )
    with pytest.raises(sqlite3.OperationalError, match="missing"):
        await db.migrate([*load_migrations(), good, broken])

    assert await db.schema_version() == base + 1
    tables = await scalar(
        repo, "SELECT group_concat(name) FROM sqlite_master WHERE name IN ('extra', 'half')"
    )
    assert tables == "extra"
    # The connection is usable afterwards: no transaction was left open.
    await repo.set_setting("after", "ok")
    assert await repo.get_setting("after") == "ok"


async def test_database_newer_than_the_code_is_refused(repo: SqliteRepositories) -> None:
    with pytest.raises(MigrationError, match="newer"):
        await repo.database.migrate([])


def test_migrations_are_bundled_in_version_order() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions[0] == 1
    assert versions == sorted(set(versions))


def test_statement_splitter_respects_strings_comments_and_triggers() -> None:
    script = """
        -- a comment; with a semicolon
        CREATE TABLE a (x TEXT DEFAULT ';');
        CREATE TRIGGER t AFTER INSERT ON a BEGIN
            UPDATE a SET x = 'y;z';
        END;
        /* trailing; comment */
    """
    statements = split_statements(script)
    creates = [s for s in statements if "CREATE" in s]
    assert len(creates) == 2
    assert creates[1].endswith("END;")

    conn = sqlite3.connect(":memory:")
    try:
        for statement in statements:  # a comment-only leftover runs as a no-op
            conn.execute(statement)
        conn.execute("INSERT INTO a (x) VALUES ('first')")
        assert conn.execute("SELECT x FROM a").fetchall() == [("y;z",)]
    finally:
        conn.close()


# -- signals ----------------------------------------------------------------------------


async def test_signal_is_stored_once_with_exact_fields(repo: SqliteRepositories) -> None:
    signal = make_signal()
    assert await repo.record_signal(signal, T0 + timedelta(seconds=2)) is True
    assert await repo.record_signal(signal, T0 + timedelta(seconds=9)) is False

    stored = await repo.get_signal("sig-1")
    assert stored is not None
    assert (stored.symbol, stored.verdict, stored.outcome) == ("SOLUSDT", "BUY", None)
    assert stored.timestamp == T0
    assert stored.timestamp is not None
    assert stored.timestamp.tzinfo is UTC
    assert stored.seen_at == T0 + timedelta(seconds=2)  # the first sighting is kept
    assert await scalar(repo, "SELECT target_min FROM signals") == "3889.5301142857147"
    assert await repo.get_signal("nope") is None


async def test_signal_dedupe_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "paper.db"
    first = await SqliteRepositories.open(path)
    assert await first.record_signal(make_signal(), T0)
    await first.close()

    second = await SqliteRepositories.open(path)
    try:
        assert await second.record_signal(make_signal(), T0 + timedelta(hours=1)) is False
    finally:
        await second.close()


async def test_invalid_signal_is_decided_on_sight(repo: SqliteRepositories) -> None:
    raw = {"timestamp": "garbage", "symbol": "ETHUSDT", "verdict": "SELL", "confidence": "x"}
    assert await repo.record_signal(InvalidSignal("bad-1", "bad_timestamp", raw), T0)
    assert await repo.record_signal(InvalidSignal("bad-2", "empty_row"), T0)

    stored = await repo.get_signal("bad-1")
    assert stored is not None
    assert (stored.symbol, stored.verdict, stored.timestamp) == ("ETHUSDT", "SELL", None)
    assert stored.outcome == "invalid:bad_timestamp"
    empty = await repo.get_signal("bad-2")
    assert empty is not None
    assert (empty.symbol, empty.verdict) == ("", "")
    assert await scalar(repo, "SELECT raw FROM signals WHERE id = 'bad-1'") == (
        '{"timestamp": "garbage", "symbol": "ETHUSDT", "verdict": "SELL", "confidence": "x"}'
    )
    assert await repo.signals_without_outcome() == []


async def test_outcome_takes_a_signal_off_the_undecided_list(repo: SqliteRepositories) -> None:
    await repo.record_signal(make_signal("late"), T0 + timedelta(seconds=5))
    await repo.record_signal(make_signal("early"), T0)
    await repo.record_signal(make_signal("done"), T0)
    await repo.set_outcome("done", "filtered:low_confidence", T0 + timedelta(seconds=1))

    assert [s.id for s in await repo.signals_without_outcome()] == ["early", "late"]
    done = await repo.get_signal("done")
    assert done is not None
    assert done.outcome == "filtered:low_confidence"


# -- orders and fills -------------------------------------------------------------------


async def test_order_round_trips_and_updates(repo: SqliteRepositories) -> None:
    order = OrderRecord(
        link_id="e-sig-1",
        signal_id="sig-1",
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("0.0010"),
        reduce_only=False,
        status=OrderStatus.PENDING,
        created_at=T0,
    )
    await repo.add_order(order)
    assert await repo.get_order("e-sig-1") == order

    await repo.update_order("e-sig-1", OrderStatus.UNKNOWN, exchange_order_id="X-1")
    await repo.update_order("e-sig-1", OrderStatus.FILLED)
    stored = await repo.get_order("e-sig-1")
    assert stored is not None
    assert stored.status is OrderStatus.FILLED
    assert stored.exchange_order_id == "X-1"  # an empty id does not erase the known one
    assert str(stored.qty) == "0.0010"
    assert await repo.get_order("missing") is None


async def test_orders_are_listed_by_status(repo: SqliteRepositories) -> None:
    for index, status in enumerate(
        [OrderStatus.PENDING, OrderStatus.FILLED, OrderStatus.UNKNOWN, OrderStatus.REJECTED]
    ):
        await repo.add_order(
            OrderRecord(
                link_id=f"o-{index}",
                signal_id=f"s-{index}",
                symbol="BTCUSDT",
                side=Side.SELL,
                qty=Decimal(1),
                reduce_only=True,
                status=status,
                created_at=T0 + timedelta(seconds=index),
                error="110007 insufficient balance" if status is OrderStatus.REJECTED else "",
            )
        )
    in_flight = await repo.orders_with_status(OrderStatus.PENDING, OrderStatus.UNKNOWN)
    assert [o.link_id for o in in_flight] == ["o-0", "o-2"]
    rejected = await repo.orders_with_status(OrderStatus.REJECTED)
    assert rejected[0].error == "110007 insufficient balance"
    assert rejected[0].reduce_only
    assert await repo.orders_with_status() == []


async def test_second_order_with_the_same_link_id_is_refused(repo: SqliteRepositories) -> None:
    order = OrderRecord("L", "S", "SOLUSDT", Side.BUY, Decimal(1), False, OrderStatus.PENDING, T0)
    await repo.add_order(order)
    with pytest.raises(sqlite3.IntegrityError):
        await repo.add_order(replace(order, status=OrderStatus.FILLED))
    stored = await repo.get_order("L")
    assert stored is not None
    assert stored.status is OrderStatus.PENDING


async def test_fill_with_a_known_exec_id_is_a_duplicate(repo: SqliteRepositories) -> None:
    fill = Fill("L", "SOLUSDT", Side.BUY, Decimal("1.5"), Decimal("187.45"), Decimal("0.15"), T0)
    assert await repo.add_fill(replace(fill, exec_id="exec-1")) is True
    assert await repo.add_fill(replace(fill, exec_id="exec-1")) is False
    # Paper fills have no exec_id: each one is its own execution.
    assert await repo.add_fill(fill) is True
    assert await repo.add_fill(fill) is True
    assert await scalar(repo, "SELECT COUNT(*) FROM fills") == 3
    assert await scalar(repo, "SELECT fee FROM fills WHERE exec_id = 'exec-1'") == "0.15"


# -- positions and trades ---------------------------------------------------------------


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


# -- settings ---------------------------------------------------------------------------


async def test_settings_set_overwrite_and_delete(repo: SqliteRepositories) -> None:
    assert await repo.get_setting("trading_enabled") is None
    await repo.set_setting("trading_enabled", "1")
    await repo.set_setting("trading_enabled", "0")
    assert await repo.get_setting("trading_enabled") == "0"
    await repo.delete_setting("trading_enabled")
    await repo.delete_setting("trading_enabled")  # deleting a missing key is fine
    assert await repo.get_setting("trading_enabled") is None


async def test_settings_prefix_match_is_literal(repo: SqliteRepositories) -> None:
    for key in ["limit.max_positions", "limit.daily_loss", "limitX", "LIMIT.other", "confirm"]:
        await repo.set_setting(key, key.upper())
    assert await repo.settings_with_prefix("limit.") == {
        "limit.daily_loss": "LIMIT.DAILY_LOSS",
        "limit.max_positions": "LIMIT.MAX_POSITIONS",
    }
    assert await repo.settings_with_prefix("limit_") == {}
    assert len(await repo.settings_with_prefix("")) == 5


# -- notification outbox ----------------------------------------------------------------


async def test_outbox_offers_each_chats_oldest_unsent_message(repo: SqliteRepositories) -> None:
    first, second = await repo.enqueue(
        [NewMessage(1, "text", '{"text": "opened"}'), NewMessage(2, "photo", "{}")], T0
    )
    (third,) = await repo.enqueue([NewMessage(1, "text", '{"text": "later"}')], T0 + MINUTE)
    assert first < second < third

    heads = await repo.next_unsent()
    assert [(m.id, m.chat_id, m.kind, m.attempts) for m in heads] == [
        (first, 1, "text", 0),
        (second, 2, "photo", 0),
    ]
    assert heads[0].payload == '{"text": "opened"}'
    assert heads[0].created_at == T0
    assert heads[0].next_attempt_at == T0
    await repo.mark_sent(first, T0 + MINUTE)
    assert [m.id for m in await repo.next_unsent()] == [second, third]


async def test_outbox_retry_defers_and_sent_messages_leave(repo: SqliteRepositories) -> None:
    first, second = await repo.enqueue([NewMessage(1, "text", "a"), NewMessage(1, "text", "b")], T0)

    await repo.mark_retry(first, T0 + timedelta(seconds=30), "TelegramNetworkError")
    await repo.mark_sent(second, T0 + timedelta(seconds=1))
    unsent = await repo.next_unsent()
    assert [(m.id, m.attempts, m.next_attempt_at) for m in unsent] == [
        (first, 1, T0 + timedelta(seconds=30))
    ]
    assert await scalar(repo, "SELECT last_error FROM outbox WHERE id = ?", (first,)) == (
        "TelegramNetworkError"
    )
    await repo.mark_sent(first, T0 + MINUTE, error="Forbidden: bot was blocked by the user")
    assert await repo.next_unsent() == []
    assert await scalar(repo, "SELECT last_error FROM outbox WHERE id = ?", (first,)) == (
        "Forbidden: bot was blocked by the user"
    )


async def test_outbox_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    before = await SqliteRepositories.open(path)
    (message_id,) = await before.enqueue([NewMessage(5, "text", "x")], T0)
    await before.close()
    after = await SqliteRepositories.open(path)
    try:
        assert [m.id for m in await after.next_unsent()] == [message_id]
    finally:
        await after.close()


# -- confirmations ----------------------------------------------------------------------


def make_confirmation(signal_id: str = "sig-1") -> Confirmation:
    return Confirmation(
        signal_id=signal_id,
        ref=f"ref-{signal_id}",
        status="pending",
        created_at=T0,
        expires_at=T0 + timedelta(seconds=60),
    )


async def test_confirmation_round_trips(repo: SqliteRepositories) -> None:
    await repo.add_confirmation(make_confirmation())
    assert await repo.get_confirmation("sig-1") == make_confirmation()
    assert await repo.confirmation_by_ref("ref-sig-1") == make_confirmation()
    assert await repo.get_confirmation("other") is None
    assert await repo.confirmation_by_ref("other") is None


async def test_confirmation_messages_are_remembered_per_chat(repo: SqliteRepositories) -> None:
    await repo.add_confirmation(make_confirmation())
    await repo.add_confirmation_message("sig-1", 42, 7)
    await repo.add_confirmation_message("sig-1", 41, 9)
    await repo.add_confirmation_message("sig-1", 42, 7)  # a redelivered send is harmless
    assert await repo.confirmation_messages("sig-1") == [(41, 9), (42, 7)]
    assert await repo.confirmation_messages("other") == []


async def test_a_stored_signal_loads_back_whole(repo: SqliteRepositories) -> None:
    signal = make_signal("full")
    await repo.record_signal(signal, T0)
    assert await repo.load_signal("full") == signal
    assert await repo.load_signal("missing") is None


async def test_second_press_on_confirmation_does_nothing(repo: SqliteRepositories) -> None:
    await repo.add_confirmation(make_confirmation("a"))
    await repo.add_confirmation(make_confirmation("b"))

    assert await repo.resolve_confirmation("a", "approved", T0) is True
    assert await repo.resolve_confirmation("a", "expired", T0) is False
    assert await repo.resolve_confirmation("missing", "declined", T0) is False
    stored = await repo.get_confirmation("a")
    assert stored is not None
    assert stored.status == "approved"
    assert [c.signal_id for c in await repo.pending_confirmations()] == ["b"]
    with pytest.raises(ValueError, match="pending"):
        await repo.resolve_confirmation("b", "pending", T0)


async def test_racing_button_and_timeout_resolve_exactly_once(repo: SqliteRepositories) -> None:
    await repo.add_confirmation(make_confirmation())
    results = await asyncio.gather(
        repo.resolve_confirmation("sig-1", "approved", T0),
        repo.resolve_confirmation("sig-1", "expired", T0),
        repo.resolve_confirmation("sig-1", "declined", T0),
    )
    assert sorted(results) == [False, False, True]


# -- the repository as a whole ----------------------------------------------------------


async def test_concurrent_writers_do_not_share_a_transaction(repo: SqliteRepositories) -> None:
    symbols = [f"C{i}USDT" for i in range(20)]
    positions = await asyncio.gather(
        *(repo.add_position(make_position(s, signal_id=s)) for s in symbols)
    )
    await asyncio.gather(
        *(repo.record_signal(make_signal(f"x{i}"), T0) for i in range(20)),
        *(
            repo.close_position(p.id, make_trade(p.symbol, signal_id=p.symbol))
            for p in positions
            if p.id is not None
        ),
    )
    assert await repo.open_positions() == []
    assert await repo.trade_count() == 20
    assert len(await repo.signals_without_outcome()) == 20


def test_every_port_method_is_implemented_with_its_signature() -> None:
    port_methods = {
        name
        for name, member in inspect.getmembers(Repositories, inspect.isfunction)
        if not name.startswith("_")
    }
    assert port_methods
    for name in port_methods:
        ours = inspect.signature(getattr(SqliteRepositories, name))
        theirs = inspect.signature(getattr(Repositories, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        assert inspect.iscoroutinefunction(getattr(SqliteRepositories, name)), name


async def test_a_writer_cancelled_mid_transaction_leaves_no_transaction_open(
    repo: SqliteRepositories,
) -> None:
    for _ in range(20):
        writer = asyncio.create_task(repo.set_setting("k", "v"))
        await asyncio.sleep(0)  # let it take the lock and start BEGIN on the worker thread
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    await repo.set_setting("after", "ok")
    assert await repo.get_setting("after") == "ok"
