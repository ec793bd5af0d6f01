"""The SQLite connection: opening it in WAL mode and bringing its schema up to date.

Migrations are the package's ``migrations/NNN_name.sql`` files, applied in order, once each.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import aiosqlite

DB_FILE_NAMES = {"paper": "paper.db", "live": "live.db"}
BUSY_TIMEOUT_MS = 5000

_MIGRATION_NAME = re.compile(r"^(?P<version>\d{3})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The migrations on disk, or the database's record of them, make no sense."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def db_path_for(data_dir: Path, mode: str) -> Path:
    """The database file of a trading mode: paper and live never share state."""
    try:
        return data_dir / DB_FILE_NAMES[mode]
    except KeyError:
        raise ValueError(f"unknown trading mode {mode!r}; expected 'paper' or 'live'") from None


def load_migrations() -> list[Migration]:
    """The bundled migrations, in version order."""
    folder = resources.files("storage").joinpath("migrations")
    migrations: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            continue
        version = int(match["version"])
        if version in migrations:
            raise MigrationError(f"two migrations have version {version:03d}")
        migrations[version] = Migration(version, match["name"], entry.read_text("utf-8"))
    return [migrations[v] for v in sorted(migrations)]


def split_statements(script: str) -> list[str]:
    """Cut a SQL script into statements (a trailing comment may come out as a no-op one).

    ``executescript`` would do it, but on Python 3.11 it commits any open transaction first,
    which would leave a failed migration half applied.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        # A ';' inside a string, comment or trigger body does not end the statement.
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    # The split adds a ';' after the last piece; what is left is only whitespace or comments.
    leftover = buffer[:-1].strip()
    if leftover and not sqlite3.complete_statement(leftover + "\n;"):
        raise MigrationError(f"incomplete SQL statement: {leftover[:60]!r}")
    return statements


class Database:
    """One aiosqlite connection, shared by every repository of the process.

    Statements from different coroutines would otherwise interleave inside each other's
    transactions on the one connection, so every use goes through ``read`` or ``transaction``,
    which take turns on an ``asyncio.Lock``.
    """

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()
        self.path = path

    @property
    def connection(self) -> aiosqlite.Connection:
        """The raw connection, for tests and maintenance; normal code uses read/transaction."""
        return self._connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, while no transaction of another coroutine is half done."""
        async with self._lock:
            yield self._connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        IMMEDIATE takes the write lock at the start, so the transaction cannot fail halfway
        with SQLITE_BUSY when another process holds it; it waits ``busy_timeout`` instead.
        """
        async with self._lock:
            try:
                # BEGIN inside the try: a task cancelled while BEGIN runs on aiosqlite's thread
                # would otherwise leave the transaction open for everyone after it.
                await self._connection.execute("BEGIN IMMEDIATE")
                yield self._connection
                await self._connection.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT: a transaction left open would make every later
                # BEGIN fail. rollback() is a no-op when SQLite has already ended it.
                await self._connection.rollback()
                raise

    async def schema_version(self) -> int:
        """The highest migration applied, 0 for an empty database."""
        async with self.read() as conn:
            return await _applied_version(conn)

    async def migrate(self, migrations: Iterable[Migration] | None = None) -> int:
        """Apply the migrations this database lacks, each in its own transaction.

        Returns the schema version afterwards. Running it again is a no-op.
        """
        pending = load_migrations() if migrations is None else list(migrations)
        known = max((m.version for m in pending), default=0)
        async with self.transaction() as conn:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = await _applied_version(conn)
        if current > known:
            # Old code on a newer database could misread it; refuse rather than guess.
            raise MigrationError(
                f"{self.path} has schema version {current}, newer than this code ({known})"
            )
        for migration in pending:
            if migration.version <= current:
                continue
            async with self.transaction() as conn:
                # Re-checked under the write lock: another process may have just applied it.
                if await _applied_version(conn) >= migration.version:
                    continue
                for statement in split_statements(migration.sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, datetime.now(UTC).isoformat()),
                )
        return await self.schema_version()

    async def close(self) -> None:
        await self._connection.close()


async def _applied_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


async def open_database(path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Database:
    """Open (creating if needed) the database at ``path`` and migrate it to the latest schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the sqlite3 module opens no transactions on its own; Database
    # issues BEGIN/COMMIT itself, so what is atomic is decided in one place.
    connection = await aiosqlite.connect(path, isolation_level=None)
    try:
        connection.row_factory = sqlite3.Row
        await connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        async with connection.execute("PRAGMA journal_mode = WAL") as cursor:
            row = await cursor.fetchone()
        if row is None or str(row[0]).lower() != "wal":
            raise sqlite3.OperationalError(f"could not switch {path} to WAL mode")
        # NORMAL is durable across application crashes in WAL mode; only a power loss can
        # drop the last commits, and the exchange stays the source of truth for positions.
        await connection.execute("PRAGMA synchronous = NORMAL")
        await connection.execute("PRAGMA foreign_keys = ON")
        database = Database(connection, path)
        await database.migrate()
    except BaseException:
        await connection.close()
        raise
    return database
