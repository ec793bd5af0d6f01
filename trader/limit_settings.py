"""Limits changed from chat (``/limits NAME VALUE``): stored in the database, laid over the
strategy file's until reset, so that a restart keeps them. The rules themselves (names,
bounds, parsing) are ``trader.rules``'s."""

from __future__ import annotations

from trader import rules
from trader.ports import Repositories
from trader.rules import Limits
from trader.strategy import Strategy

LIMIT_PREFIX = "limit."


class LimitSettings:
    def __init__(self, *, repo: Repositories, strategy: Strategy) -> None:
        self._repo = repo
        self._strategy = strategy

    async def load(self) -> Limits:
        """The strategy file's limits with the ones changed from chat laid over them."""
        overrides = await self._repo.settings_with_prefix(LIMIT_PREFIX)
        return Limits.from_strategy(self._strategy).with_overrides(
            {key.removeprefix(LIMIT_PREFIX): value for key, value in overrides.items()}
        )

    async def set(self, limits: Limits, name: str, raw: str) -> Limits:
        """``limits`` with one changed as typed, and stored; ``ValueError`` with a clear
        message changes nothing."""
        value = rules.parse_limit(name, raw)
        # Stored as plain digits ("0.0000001", never "1E-7"), or "off" for a guard switched
        # off: read back by the same rules.
        stored = rules.OFF if value is None else format(value, "f")
        await self._repo.set_setting(LIMIT_PREFIX + name, stored)
        return limits.with_overrides({name: stored})

    async def reset(self, name: str) -> Limits:
        """Back to the strategy file's value for ``name``."""
        rules.require_limit_name(name)
        await self._repo.delete_setting(LIMIT_PREFIX + name)
        return await self.load()
