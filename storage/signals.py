"""Signals as first seen, and the outcome each came to (``opened``, ``rejected:<why>``,
``failed:<the venue's words>``, ...): stored once by id, however often the log is read again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from storage.codec import (
    FULL_SIGNAL_COLUMNS,
    SIGNAL_COLUMNS,
    signal_from_row,
    signal_values,
    stored_signal_from_row,
    to_db_time,
)
from storage.tables import Tables
from trader.models import InvalidSignal, Signal
from trader.ports import StoredSignal

log = logging.getLogger(__name__)


SIGNAL_INSERT = (
    "INSERT INTO signals (id, symbol, verdict, timestamp, seen_at, confidence,"
    " entry_price, ttl_minutes, target_min, target_max, raw, outcome, outcome_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO NOTHING"
)


class SignalTables(Tables):
    """Implements ``trader.ports.SignalRepository``."""

    async def record_signal(self, signal: Signal | InvalidSignal, seen_at: datetime) -> bool:
        changed = await self._write(
            SIGNAL_INSERT, signal_values(signal, seen_at, redact=self._redact)
        )
        return changed == 1

    async def record_decided(
        self, decided: Sequence[tuple[Signal | InvalidSignal, str]], seen_at: datetime
    ) -> int:
        if not decided:
            return 0
        # A backlog has a handful of distinct outcomes: each is masked once.
        redacted = {outcome: self._redact(outcome) for outcome in {o for _, o in decided}}
        seen = to_db_time(seen_at)
        # A generator: the rows are built on the database's thread, off the event loop (a
        # backlog stores thousands at a time).
        rows = (
            (*signal_values(signal, seen_at, redact=self._redact)[:11], redacted[outcome], seen)
            for signal, outcome in decided
        )
        async with self._db.transaction() as conn, conn.executemany(SIGNAL_INSERT, rows) as cur:
            # executemany sums the rows each insert changed: a known id adds nothing.
            return max(cur.rowcount, 0)

    async def set_outcome(self, signal_id: str, outcome: str, at: datetime) -> None:
        changed = await self._write(
            "UPDATE signals SET outcome = ?, outcome_at = ? WHERE id = ?",
            # An outcome can carry an error text ("failed:<the venue's words>").
            (self._redact(outcome), to_db_time(at), signal_id),
        )
        if changed == 0:
            log.warning("outcome %r for unknown signal %s was not stored", outcome, signal_id)

    async def get_signal(self, signal_id: str) -> StoredSignal | None:
        row = await self._fetch_one(
            f"SELECT {SIGNAL_COLUMNS} FROM signals WHERE id = ?", (signal_id,)
        )
        return None if row is None else stored_signal_from_row(row)

    async def outcomes_since(self, since: datetime) -> dict[str, int]:
        rows = await self._fetch_all(
            "SELECT COALESCE(outcome, 'being decided') AS outcome, COUNT(*) AS n FROM signals"
            " WHERE seen_at >= ? GROUP BY 1",
            (to_db_time(since),),
        )
        return {str(row["outcome"]): int(row["n"]) for row in rows}

    async def recent_signals(self, limit: int) -> Sequence[StoredSignal]:
        rows = await self._fetch_all(
            f"SELECT {SIGNAL_COLUMNS} FROM signals"
            " ORDER BY COALESCE(timestamp, seen_at) DESC, seen_at DESC LIMIT ?",
            (max(0, limit),),
        )
        return [stored_signal_from_row(row) for row in rows]

    async def signals_without_outcome(self) -> Sequence[StoredSignal]:
        rows = await self._fetch_all(
            f"SELECT {SIGNAL_COLUMNS} FROM signals WHERE outcome IS NULL ORDER BY seen_at, id"
        )
        return [stored_signal_from_row(row) for row in rows]

    async def load_signal(self, signal_id: str) -> Signal | None:
        row = await self._fetch_one(
            f"SELECT {FULL_SIGNAL_COLUMNS} FROM signals WHERE id = ?", (signal_id,)
        )
        return None if row is None else signal_from_row(row)
