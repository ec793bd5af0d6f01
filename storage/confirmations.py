"""Trade confirmations: one question per signal, the chat messages that asked it, and its
answer, which leaves "pending" exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from storage.codec import CONFIRMATION_COLUMNS, confirmation_from_row, to_db_time
from storage.tables import Tables
from trader.ports import Confirmation

CONFIRMATION_OUTCOMES = frozenset({"approved", "declined", "expired"})


class ConfirmationTables(Tables):
    """Implements ``trader.ports.ConfirmationRepository``."""

    async def add_confirmation(self, confirmation: Confirmation) -> None:
        await self._write(
            f"INSERT INTO confirmations ({CONFIRMATION_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (
                confirmation.signal_id,
                confirmation.ref,
                confirmation.status,
                to_db_time(confirmation.created_at),
                to_db_time(confirmation.expires_at),
            ),
        )

    async def get_confirmation(self, signal_id: str) -> Confirmation | None:
        row = await self._fetch_one(
            f"SELECT {CONFIRMATION_COLUMNS} FROM confirmations WHERE signal_id = ?",
            (signal_id,),
        )
        return None if row is None else confirmation_from_row(row)

    async def confirmation_by_ref(self, ref: str) -> Confirmation | None:
        row = await self._fetch_one(
            f"SELECT {CONFIRMATION_COLUMNS} FROM confirmations WHERE ref = ?", (ref,)
        )
        return None if row is None else confirmation_from_row(row)

    async def add_confirmation_message(self, signal_id: str, chat_id: int, message_id: int) -> None:
        await self._write(
            "INSERT INTO confirmation_messages (chat_id, message_id, signal_id) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (chat_id, message_id, signal_id),
        )

    async def confirmation_messages(self, signal_id: str) -> Sequence[tuple[int, int]]:
        rows = await self._fetch_all(
            "SELECT chat_id, message_id FROM confirmation_messages WHERE signal_id = ?"
            " ORDER BY chat_id, message_id",
            (signal_id,),
        )
        return [(int(row[0]), int(row[1])) for row in rows]

    async def resolve_confirmation(self, signal_id: str, status: str, at: datetime) -> bool:
        if status not in CONFIRMATION_OUTCOMES:
            raise ValueError(f"a confirmation cannot be resolved as {status!r}")
        # Compare-and-set: of a button press and the timeout racing, exactly one wins.
        changed = await self._write(
            "UPDATE confirmations SET status = ?, resolved_at = ?"
            " WHERE signal_id = ? AND status = 'pending'",
            (status, to_db_time(at), signal_id),
        )
        return changed == 1

    async def pending_confirmations(self) -> Sequence[Confirmation]:
        rows = await self._fetch_all(
            f"SELECT {CONFIRMATION_COLUMNS} FROM confirmations WHERE status = 'pending'"
            " ORDER BY created_at, signal_id"
        )
        return [confirmation_from_row(row) for row in rows]
