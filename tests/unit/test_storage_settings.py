"""The settings repository: set, overwrite, delete, and a literal prefix match.

Each test opens its own database under ``tmp_path``; nothing is mocked.
"""

from __future__ import annotations

from storage.repositories import SqliteRepositories
from tests.unit.storage_support import repo

__all__ = ["repo"]  # fixtures


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
