"""The trading runtime: settings → storage → exchange → engine → signal follower, built
and torn down as one. It owns the venue adapters, so the chat package never imports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from storage.export import append_trade, mirror_matches
from storage.repositories import SqliteRepositories
from trader.clock import Clock, SystemClock
from trader.engine import VENUE_CHECK_SECONDS, Engine
from trader.errors import ConfigError
from trader.events import Event, PositionClosed, PositionReduced, SignalLogMissing
from trader.exchange.base import Exchange
from trader.exchange.bybit import BybitExchange
from trader.exchange.market import BybitMarketData
from trader.exchange.paper import PaperExchange
from trader.exchange.venue_gate import VenueGate
from trader.redaction import secrets_of
from trader.settings import Settings
from trader.signal_feed import SignalFeed
from trader.strategy import Strategy, load_strategy

# VenueGate is re-exported: the composition root above this one (the chat) passes a shared
# gate through without importing the venue's package.
__all__ = ["Runtime", "VenueGate", "build_runtime"]

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything one process runs, built by ``build_runtime`` and torn down by ``stop``."""

    settings: Settings
    strategy: Strategy
    repo: SqliteRepositories
    engine: Engine
    feed: SignalFeed
    _follow_task: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        await self.engine.start()
        path = self.settings.signals_path
        if not path.exists():  # followed all the same: read from its start once it appears
            log.warning("signal log %s is not there; waiting for it", path)
            await self.engine.bus.publish(SignalLogMissing(str(path), self.engine.clock.now()))
        await self.feed.open()  # rows appended from now on are acted on at once
        _freeze_start_up()
        self._follow_task = asyncio.create_task(self.feed.run(), name="signal-feed")

    async def halt(self) -> None:
        """Stop taking signals and stop the engine; the database stays open (the notifier
        still flushes through it)."""
        if self._follow_task is not None:
            self._follow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow_task
            self._follow_task = None
        await self.engine.stop()

    async def stop(self) -> None:
        await self.halt()
        await self.repo.close()


def _freeze_start_up() -> None:
    """Put what start-up loaded (libraries, clients, the engine; aiogram's models alone are
    ~250k objects), which lives as long as the process, out of the cyclic collector's sight,
    once per process: a full collection, every few seconds while a backlog of signals is
    recorded or a report drawn, then takes ~1 ms on the event loop rather than 40-200 ms."""
    global _FROZEN
    if not _FROZEN:
        gc.freeze()
        _FROZEN = True


_FROZEN = False


async def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    venue_check_seconds: float | None = None,
    venue_gate: VenueGate | None = None,
) -> Runtime:
    """Wire the process from settings. Raises ``ConfigError`` with one line on bad input.
    ``venue_check_seconds``: the live engine's periodic reconciliation (tests shorten it).
    ``venue_gate``: Bybit's ban of this IP, shared by both Bybit clients (tests shorten it)."""
    clock = clock or SystemClock()
    gate = venue_gate or VenueGate()
    strategy = load_strategy(settings.strategy_path, required=settings.strategy_path_set)
    # No secret reaches the database either: every error text it stores is masked.
    repo = await SqliteRepositories.open(settings.db_path, secrets=secrets_of(settings))
    try:
        positions = await repo.open_positions()
        # The paper wallet is derived, never stored: it cannot drift from the trades.
        wallet = (
            strategy.paper_balance_usdt
            + await repo.net_pnl_total()
            - sum((p.entry_fee for p in positions), Decimal(0))
        )
        market = BybitMarketData(settings.rest_url, settings.ws_public_url, gate=gate)
        exchange: Exchange
        if settings.trading_mode == "live":
            exchange = _live_exchange(settings, market, clock, gate)
        else:
            exchange = PaperExchange(
                market, fee_rate=strategy.fee_rate, wallet=wallet, clock=clock, trailing_bests=repo
            )
        engine = Engine(
            strategy=strategy,
            exchange=exchange,
            repo=repo,
            clock=clock,
            venue_check_seconds=venue_check_seconds or VENUE_CHECK_SECONDS,
        )
        await _mirror_trades(engine, repo, settings.trades_csv_path)
        feed = SignalFeed(settings.signals_path, engine, repo)
    except BaseException:
        await repo.close()
        raise
    return Runtime(settings, strategy, repo, engine, feed)


def _live_exchange(
    settings: Settings, market: BybitMarketData, clock: Clock, gate: VenueGate
) -> Exchange:
    if settings.bybit_api_key is None or settings.bybit_api_secret is None:
        raise ConfigError("TRADING_MODE=live needs BYBIT_API_KEY and BYBIT_API_SECRET")
    return BybitExchange(
        market,
        rest_url=settings.rest_url,
        ws_private_url=settings.ws_private_url,
        api_key=settings.bybit_api_key.get_secret_value(),
        api_secret=settings.bybit_api_secret.get_secret_value(),
        clock=clock,
        gate=gate,
    )


async def _mirror_trades(engine: Engine, repo: SqliteRepositories, path: Path) -> None:
    """Keep ``trades_log.csv`` equal to the closed trades, in the order they are booked:
    appended as each closes; at start checked cheaply and rebuilt only when it differs (a
    crash between a trade and its row, a deleted or edited file)."""
    count, last = await repo.trade_count(), await repo.last_trade()
    if not await asyncio.to_thread(mirror_matches, path, count, last):
        log.info("rebuilding %s from the %d closed trades stored", path, count)
        await repo.export_trades(path)
    appending = asyncio.Lock()  # trades closing together: whole rows, in the order booked

    async def on_event(event: Event) -> None:
        if isinstance(event, PositionClosed | PositionReduced):
            async with appending:
                await asyncio.to_thread(append_trade, path, event.trade)

    engine.bus.subscribe(on_event)
