"""The notification outbox: what the chats are to be told, kept until Telegram has taken it.

Messages are stored on their own (``enqueue``) or inside the transaction of the change they
report (``insert_notes``, for the ``notes=`` of the position and settings methods). Every
text is masked of secrets, as the logs are: a chat line and a delivery error alike can quote
an error text, and an aiohttp error quotes the bot's URL, token included.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from storage.codec import OUTBOX_COLUMNS, outbox_message_from_row, redact_payload, to_db_time
from storage.tables import Tables
from trader.ports import NewMessage, OutboxMessage
from trader.redaction import Redactor


class OutboxTables(Tables):
    """Implements ``trader.ports.OutboxRepository``."""

    async def enqueue(self, messages: Sequence[NewMessage], at: datetime) -> list[int]:
        async with self._db.transaction() as conn:
            return await insert_notes(conn, messages, at, self._redact)

    async def next_unsent(self) -> Sequence[OutboxMessage]:
        # One head per chat: a chat whose head must wait never hides another chat's messages.
        rows = await self._fetch_all(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id IN"
            " (SELECT MIN(id) FROM outbox WHERE sent_at IS NULL GROUP BY chat_id) ORDER BY id"
        )
        return [outbox_message_from_row(row) for row in rows]

    async def unsent_count(self) -> int:
        row = await self._fetch_one("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
        return 0 if row is None else int(row["n"])

    async def mark_sent(self, message_id: int, at: datetime, *, error: str = "") -> None:
        # A sent chart's PNG is dropped: it is the bulk of the table and nobody reads it again.
        await self._write(
            "UPDATE outbox SET sent_at = ?, last_error = ?,"
            " payload = CASE WHEN kind = 'photo' THEN '' ELSE payload END WHERE id = ?",
            (to_db_time(at), self._redact(error), message_id),
        )

    async def mark_retry(self, message_id: int, next_attempt_at: datetime, error: str) -> None:
        await self._write(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ?",
            (to_db_time(next_attempt_at), self._redact(error), message_id),
        )


async def insert_notes(
    conn: aiosqlite.Connection,
    messages: Sequence[NewMessage],
    at: datetime,
    redact: Redactor,
) -> list[int]:
    """Store outbox messages inside the caller's transaction, due at ``at``; their ids.

    A chat text can quote an error, so it is masked like one."""
    stamp = to_db_time(at)
    ids: list[int] = []
    for message in messages:
        payload = redact_payload(message.payload, redact)
        cursor = await conn.execute(
            "INSERT INTO outbox (chat_id, kind, payload, created_at, next_attempt_at, silent)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (message.chat_id, message.kind, payload, stamp, stamp, int(message.silent)),
        )
        if cursor.lastrowid is None:  # pragma: no cover - an INSERT always sets it
            raise RuntimeError("outbox insert returned no id")
        ids.append(cursor.lastrowid)
        await cursor.close()
    return ids
