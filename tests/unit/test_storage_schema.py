"""The SQLite file and its schema: one file per mode, WAL and its pragmas, and the
migrations (re-run, rolled back whole, refused when the file is newer than the code).

Each test opens its own database under ``tmp_path``; nothing is mocked.
"""

from __future__ import annotations

import sqlite3
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
from storage.repositories import SqliteRepositories
from tests.unit.storage_support import MINUTE, T0, repo, scalar

__all__ = ["repo"]  # fixtures


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
