"""Settings changed from chat, limits and switches: they override the strategy file until
reset. A change is stored with the chat notes that report it, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.outbox import insert_notes
from storage.tables import Tables
from trader.ports import NewMessage


class SettingsTables(Tables):
    """Implements ``trader.ports.SettingsRepository``."""

    async def get_setting(self, key: str) -> str | None:
        row = await self._fetch_one("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_setting(self, key: str, value: str, *, notes: Sequence[NewMessage] = ()) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
            await insert_notes(conn, notes, self._now(), self._redact)

    async def delete_setting(self, key: str) -> None:
        await self._write("DELETE FROM settings WHERE key = ?", (key,))

    async def settings_with_prefix(self, prefix: str) -> dict[str, str]:
        # substr rather than LIKE: LIKE is case-insensitive and treats '_' as a wildcard.
        rows = await self._fetch_all(
            "SELECT key, value FROM settings WHERE substr(key, 1, length(?)) = ? ORDER BY key",
            (prefix, prefix),
        )
        return {str(row[0]): str(row[1]) for row in rows}
