"""The SQLite implementation of ``trader.ports.Repositories``: every table behind one object,
composed of one part per aggregate (``storage.tables`` says which).

Decimals are stored as exact text, times as fixed-width UTC ISO-8601 text, enums as values.
Chat notes given with a change (``notes=``) go into the outbox in the change's transaction.
Every error text written (orders, signal outcomes, the outbox's errors and texts) is masked
of the secrets the repository was given, as the logs are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from storage.balance_marks import BalanceMarkTables
from storage.confirmations import ConfirmationTables
from storage.db import open_database
from storage.outbox import OutboxTables
from storage.positions import PositionTables
from storage.settings import SettingsTables
from storage.signals import SignalTables
from storage.tables import utc_now
from storage.trades import TradeTables

if TYPE_CHECKING:
    from trader.ports import Repositories


class SqliteRepositories(
    SignalTables,
    PositionTables,
    TradeTables,
    BalanceMarkTables,
    SettingsTables,
    OutboxTables,
    ConfirmationTables,
):
    """Implements ``trader.ports.Repositories`` over one ``Database``.

    Every write method is one transaction, committed before it returns. ``secrets`` are
    masked in every error text written; notes stored with a change are stamped with ``now``
    (see ``Tables``).
    """

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        secrets: Iterable[str] = (),
        now: Callable[[], datetime] = utc_now,
    ) -> SqliteRepositories:
        """Open (creating and migrating if needed) the database file at ``path``."""
        return cls(await open_database(path), secrets=secrets, now=now)


if TYPE_CHECKING:

    def _implements_the_port(repositories: SqliteRepositories) -> Repositories:
        # mypy checks the structural match here, so a drift from trader.ports fails the build.
        return repositories
