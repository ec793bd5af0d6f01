"""Symbols made ready to trade on Bybit before their signals come: instruments loaded, leverage
set, position mode checked (one-way) and tickers streamed, so that an entry's first call is its
order. A symbol that was not prepared gets only what it lacks, concurrently, at its entry.

Why per symbol: switching the position mode by coin leaves alone every symbol with a setting
of its own, or with positions or orders open; Bybit says a symbol's mode in its position list
(hedge mode: rows with ``positionIdx`` 1 and 2).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pybit.unified_trading import HTTP

from trader import sizing
from trader.errors import ExchangeError, NotTradable, Retryable
from trader.exchange.base import MarketData
from trader.exchange.bybit_messages import CATEGORY, rows_of
from trader.exchange.bybit_wire import (
    LEVERAGE_NOT_MODIFIED,
    POSITION_MODE_NOT_MODIFIED,
    call_pybit,
    decimal_field,
)
from trader.models import Ticker

log = logging.getLogger(__name__)

ONE_WAY = 0  # switch-mode's mode for one-way (3 is hedge)
HEDGE_SIDES = frozenset({"1", "2"})  # positionIdx of a hedge-mode symbol's buy / sell side
# Symbols prepared at once: Bybit allows 10 set-leverage calls a second per account.
CONCURRENT_SYMBOLS = 5
STREAM_WAIT = 3.0  # seconds start-up waits for the first tickers of the prepared symbols


@dataclass(frozen=True, slots=True)
class SymbolSetting:
    """What Bybit's position list says of one symbol: its mode, whether a position is open,
    and its leverage (None if it does not say)."""

    hedge: bool
    open: bool
    leverage: Decimal | None


def parse_symbol_setting(rows: Sequence[Mapping[str, Any]]) -> SymbolSetting:
    """``/v5/position/list?symbol=X``: one row (``positionIdx`` 0) in one-way mode, one per
    side (1 and 2) in hedge mode; a flat side has size "0"."""
    hedge = any(str(row.get("positionIdx")) in HEDGE_SIDES for row in rows)
    is_open = any(decimal_field(row.get("size") or "0", "size") > 0 for row in rows)
    levels = {str(row.get("leverage") or "") for row in rows} - {""}
    leverage = decimal_field(levels.pop(), "leverage") if len(levels) == 1 else None
    return SymbolSetting(hedge=hedge, open=is_open, leverage=leverage)


class PreparedSymbols:
    """Per symbol: the leverage Bybit has for it and whether it is known to be one-way."""

    def __init__(self, http: HTTP, market: MarketData) -> None:
        self._http = http
        self._market = market
        self._leverage: dict[str, int] = {}  # as set (or read) on Bybit
        self._one_way: set[str] = set()  # checked: one-way mode, orders take positionIdx 0
        self._limit = asyncio.Semaphore(CONCURRENT_SYMBOLS)

    # --- ahead of the signals --------------------------------------------------------------

    async def prepare(self, symbols: Sequence[str], leverage: int) -> None:
        """Load every instrument, then ready each USDT perpetual of ``symbols``; never
        raises (what fails is logged and done at the symbol's entry instead)."""
        try:
            await self._market.load_instruments()
        except ExchangeError as exc:
            log.warning("loading Bybit's instruments failed: %s; each is read at its entry", exc)
        tradable = [s for s in dict.fromkeys(symbols) if await self._is_usdt_perpetual(s)]
        watched = await asyncio.gather(*(self._prepare_one(s, leverage) for s in tradable))
        streamed = [s for s in watched if s is not None]
        if not await self._market.wait_streamed(streamed, STREAM_WAIT):
            log.warning("the public stream is not carrying %s yet: REST prices meanwhile", streamed)

    async def _is_usdt_perpetual(self, symbol: str) -> bool:
        try:
            instrument = await self._market.instrument(symbol)
        except ExchangeError as exc:
            log.warning("whitelisted %s cannot be traded: %s", symbol, exc)
            return False
        if not instrument.is_usdt_perpetual:
            log.warning(
                "whitelisted %s is not a USDT perpetual (%s settled in %s): its signals are "
                "rejected",
                symbol,
                instrument.contract_type,
                instrument.settle_coin,
            )
        return instrument.is_usdt_perpetual

    async def _prepare_one(self, symbol: str, asked: int) -> str | None:
        """Ready ``symbol`` at leverage ``asked`` (capped at the instrument's maximum, as an
        entry caps it); the symbol if its tickers are streamed now."""
        async with self._limit:
            try:
                await self._market.watch(symbol)
            except ExchangeError as exc:
                log.warning("streaming %s failed: %s", symbol, exc)
                return None
            try:
                leverage = sizing.capped_leverage(asked, await self._market.instrument(symbol))
                setting = await self._read_setting(symbol)
                if setting.hedge:
                    await self._switch_to_one_way(symbol)
                self._one_way.add(symbol)
                if setting.leverage == leverage:
                    self._leverage[symbol] = leverage
                elif setting.open:
                    # Changing it would change the margin of a position already open.
                    log.info(
                        "%s: leverage left at %s while its position is open",
                        symbol,
                        setting.leverage,
                    )
                else:
                    await self.set_leverage(symbol, leverage)
            except NotTradable as exc:
                log.warning("%s; its signals are rejected until that changes", exc)
            except ExchangeError as exc:
                log.warning("preparing %s failed: %s; it is prepared at its entry", symbol, exc)
            return symbol

    # --- at an entry -----------------------------------------------------------------------

    async def prepare_entry(self, symbol: str, leverage: int) -> Ticker:
        """What ``symbol`` still lacks for the order, concurrently, and its ticker (from the
        stream when it streams the symbol: then nothing here waits on a round trip). Its
        stream is not on the order's path: ``watch_after_entry`` subscribes it after."""
        steps: list[Awaitable[Any]] = []
        if symbol not in self._one_way:
            steps.append(self._ensure_one_way(symbol))
        if self._leverage.get(symbol) != leverage:
            steps.append(self.set_leverage(symbol, leverage))
        if not steps:  # prepared: no task, no call, the order comes next
            return await self._market.ticker(symbol)
        # Every step finishes before any failure is raised: none is left running unobserved.
        results = await asyncio.gather(self._market.ticker(symbol), *steps, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise next((f for f in failures if isinstance(f, NotTradable)), failures[0])
        ticker = results[0]
        assert isinstance(ticker, Ticker)
        return ticker

    async def watch_after_entry(self, symbol: str) -> None:
        """Stream ``symbol``'s tickers once its order is sent (no call when it streams them
        already); never raises: until the stream carries it, REST covers its prices."""
        try:
            await self._market.watch(symbol)
        except ExchangeError as exc:
            log.warning("streaming %s failed: %s", symbol, exc)

    async def _ensure_one_way(self, symbol: str) -> None:
        if (await self._read_setting(symbol)).hedge:
            await self._switch_to_one_way(symbol)
        self._one_way.add(symbol)

    # --- Bybit ----------------------------------------------------------------------------

    async def _read_setting(self, symbol: str) -> SymbolSetting:
        response = await call_pybit(
            "position mode", self._http.get_positions, category=CATEGORY, symbol=symbol
        )
        return parse_symbol_setting(rows_of(response))

    async def _switch_to_one_way(self, symbol: str) -> None:
        """Raises ``NotTradable`` when Bybit refuses (positions or orders open there)."""
        try:
            switched = await call_pybit(
                "position mode switch",
                self._http.switch_position_mode,
                unchanged=POSITION_MODE_NOT_MODIFIED,
                category=CATEGORY,
                symbol=symbol,
                mode=ONE_WAY,
            )
        except ExchangeError as exc:
            if isinstance(exc, Retryable) or exc.code is None:
                raise  # no answer, or not a refusal: the entry fails, it is not rejected
            raise NotTradable(
                "hedge_mode",
                f"{symbol} is in hedge mode on Bybit and could not be switched to one-way: {exc}",
                code=exc.code,
            ) from None
        if switched is not None:  # None: Bybit says it was one-way already
            log.info("%s switched from hedge mode to one-way on Bybit", symbol)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        if self._leverage.get(symbol) == leverage:
            return
        await call_pybit(
            "set leverage",
            self._http.set_leverage,
            unchanged=LEVERAGE_NOT_MODIFIED,  # "leverage not modified" is success
            category=CATEGORY,
            symbol=symbol,
            buyLeverage=str(leverage),
            sellLeverage=str(leverage),
        )
        self._leverage[symbol] = leverage
