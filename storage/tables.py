"""What every part of the repositories shares: the one ``Database``, the secrets masked in
every error text written, and the clock that stamps the outbox.

``SqliteRepositories`` (``storage.repositories``) is composed of one part per aggregate:
signals (``storage.signals``), orders with their fills and positions (``storage.positions``),
closed trades (``storage.trades``), balance marks (``storage.balance_marks``), settings
(``storage.settings``), the outbox (``storage.outbox``) and trade confirmations
(``storage.confirmations``). A read that can span the whole history runs aside
(``_read_aside``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from storage.db import BUSY_TIMEOUT_MS, Database
from trader.redaction import Redactor

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Tables:
    """The base of every part. ``secrets`` are masked in every error text written. Notes
    stored with a change are due at once, stamped with ``now``: the outbox runs on real
    time, like its delivery, whatever the engine's clock says."""

    def __init__(
        self,
        db: Database,
        *,
        secrets: Iterable[str] = (),
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._redact = Redactor(secrets)
        self._now = now

    @property
    def database(self) -> Database:
        return self._db

    async def close(self) -> None:
        await self._db.close()

    async def _fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._db.read() as conn, conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def _fetch_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self._db.read() as conn, conn.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; returns the rows it changed."""
        async with self._db.transaction() as conn, conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def _read_aside(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """``read`` in a worker thread on a read-only connection of its own (see the module
        docstring). In WAL mode each statement reads one committed snapshot, and no writer
        waits for it."""
        return await asyncio.to_thread(_on_own_connection, self._db.path, read)


def _on_own_connection(path: Path, read: Callable[[sqlite3.Connection], T]) -> T:
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
    )
    try:
        return read(conn)
    finally:
        conn.close()
