"""The whitelist and blacklist in force: the strategy file's, or the ones edited from chat
(``/coins``), which are stored and override the file's until reset, like the limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from trader import rules
from trader.errors import ExchangeError, Retryable
from trader.exchange.base import Exchange
from trader.ports import SettingsRepository
from trader.rules import CoinLists
from trader.strategy import Strategy

log = logging.getLogger(__name__)

WHITELIST_KEY = "coins.top_coins"
BLACKLIST_KEY = "coins.excluded_coins"
# Each symbol the venue's start-up load did not know costs it a call: a command names few.
MAX_SYMBOLS = 30


class CoinAction(StrEnum):
    ADD = "add"  # to the whitelist
    REMOVE = "remove"  # from the whitelist
    EXCLUDE = "exclude"  # to the blacklist
    INCLUDE = "include"  # back from the blacklist
    RESET = "reset"  # both lists back to the strategy file's

    @property
    def on_whitelist(self) -> bool:
        return self in (CoinAction.ADD, CoinAction.REMOVE)

    @property
    def adds(self) -> bool:
        return self in (CoinAction.ADD, CoinAction.EXCLUDE)


@dataclass(frozen=True, slots=True)
class CoinEdit:
    """What one ``/coins`` command did: the lists before and after it, the symbols it moved,
    those it left as they were (already there, or not there), and those refused, with why."""

    action: CoinAction
    before: CoinLists
    after: CoinLists
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()


def parse_action(word: str) -> CoinAction:
    try:
        return CoinAction(word.strip().lower())
    except ValueError:
        names = ", ".join(CoinAction)
        raise ValueError(f"unknown action {rules.echo(word)}; one of: {names}") from None


def stored_lists(file_lists: CoinLists, stored: Mapping[str, str]) -> CoinLists:
    """The stored lists laid over the file's; a stored value that does not parse is ignored
    (the file's list holds)."""
    whitelist = _stored_list(stored.get(WHITELIST_KEY))
    blacklist = _stored_list(stored.get(BLACKLIST_KEY))
    return CoinLists(
        whitelist=file_lists.whitelist if whitelist is None else whitelist,
        blacklist=file_lists.blacklist if blacklist is None else blacklist,
    )


def _stored_list(raw: str | None) -> frozenset[str] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        return None
    return frozenset(value)


class Coins:
    """The lists the engine screens signals with; edited from chat, stored, and in force
    from the next signal on."""

    def __init__(
        self,
        *,
        strategy: Strategy,
        repo: SettingsRepository,
        exchange: Exchange,
        on_whitelisted: Callable[[list[str]], None] | None = None,
    ) -> None:
        """``on_whitelisted``: called with the symbols an edit added to the whitelist (the
        engine readies them on the venue before their first signal)."""
        self._strategy = strategy
        self._repo = repo
        self._exchange = exchange
        self._on_whitelisted = on_whitelisted
        self._file_lists = CoinLists.from_strategy(strategy)
        self.lists = self._file_lists
        self._editing = asyncio.Lock()

    async def load(self) -> None:
        stored = await self._repo.settings_with_prefix("coins.")
        self.lists = stored_lists(self._file_lists, stored)

    def strategy_in_force(self) -> Strategy:
        """The strategy file with the lists in force (what the start message describes)."""
        return replace(
            self._strategy, top_coins=self.lists.whitelist, excluded_coins=self.lists.blacklist
        )

    async def edit(self, action: CoinAction, words: Sequence[str]) -> CoinEdit:
        """Add symbols to a list or remove them from it. A symbol may be typed in any case
        and without its quote coin; one to add must be a USDT perpetual on the venue. The
        refused ones are named, the rest applied. ``ValueError``: nothing was done."""
        if action is CoinAction.RESET:
            if words:
                raise ValueError("/coins reset takes no symbols")
            return await self.reset()
        if not words:
            raise ValueError(f"/coins {action} needs at least one symbol")
        if len(words) > MAX_SYMBOLS:
            raise ValueError(f"at most {MAX_SYMBOLS} symbols at a time, got {len(words)}")
        order: dict[str, int] = {}  # each name, and where it was first typed
        symbols: list[str] = []
        refused: list[tuple[str, str]] = []
        for index, word in enumerate(words):
            if rules.looks_like_symbol(word):
                name = rules.full_symbol(word)
                if name not in order:
                    symbols.append(name)
            else:
                name = rules.echo(word)
                refused.append((name, "not a symbol"))
            order.setdefault(name, index)
        async with self._editing:  # two edits at once would each drop the other's change
            before = self.lists
            current = before.whitelist if action.on_whitelist else before.blacklist
            if action.adds:
                fresh = [s for s in symbols if s not in current]
                # Only a coin to trade is checked with Bybit: blocking one never waits on it.
                checked = action is CoinAction.ADD
                reasons = await asyncio.gather(
                    *(self._why_not(s) if checked else _no_reason() for s in fresh)
                )
                refused += [(s, why) for s, why in zip(fresh, reasons, strict=True) if why]
                changed = [s for s, why in zip(fresh, reasons, strict=True) if why is None]
                unchanged = [s for s in symbols if s in current]
                edited = current | frozenset(changed)
            else:
                changed = [s for s in symbols if s in current]
                unchanged = [s for s in symbols if s not in current]
                edited = current - frozenset(changed)
            if changed:
                key = WHITELIST_KEY if action.on_whitelist else BLACKLIST_KEY
                await self._repo.set_setting(key, json.dumps(sorted(edited)))
                if action.on_whitelist:
                    self.lists = replace(before, whitelist=edited)
                else:
                    self.lists = replace(before, blacklist=edited)
            after = self.lists
        refused.sort(key=lambda item: order[item[0]])  # as typed
        if action is CoinAction.ADD and changed and self._on_whitelisted is not None:
            self._on_whitelisted(changed)
        return CoinEdit(action, before, after, tuple(changed), tuple(unchanged), tuple(refused))

    async def reset(self) -> CoinEdit:
        """Both lists back to the strategy file's."""
        async with self._editing:
            before = self.lists
            await self._repo.delete_setting(WHITELIST_KEY)
            await self._repo.delete_setting(BLACKLIST_KEY)
            self.lists = after = self._file_lists
        added = sorted(after.whitelist - before.whitelist)
        if added and self._on_whitelisted is not None:
            self._on_whitelisted(added)
        return CoinEdit(CoinAction.RESET, before, after)

    async def _why_not(self, symbol: str) -> str | None:
        """Why ``symbol`` cannot go on a list, or None: it must be a USDT perpetual the
        venue trades."""
        try:
            instrument = await self._exchange.instrument(symbol)
        except Retryable as exc:
            log.warning("could not check %s on the venue: %s", symbol, exc)
            return "Bybit did not answer; try again"
        except ExchangeError:
            return "not on Bybit"
        if not instrument.is_usdt_perpetual:
            return "not a USDT perpetual"
        return None


async def _no_reason() -> str | None:
    return None
