"""The trading runtime: settings → storage → exchange → engine → signal follower, built
and torn down as one. It owns the venue adapters, so the chat package never imports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

from storage.export import append_trade, rewrite_trades
from storage.repositories import SqliteRepositories
from trader.clock import Clock, SystemClock
from trader.engine import VENUE_CHECK_SECONDS, Engine
from trader.errors import ConfigError
from trader.events import Event, PositionClosed, PositionReduced
from trader.exchange.base import Exchange
from trader.exchange.bybit import BybitExchange
from trader.exchange.market import BybitMarketData
from trader.exchange.paper import PaperExchange
from trader.exchange.venue_gate import VenueGate
from trader.redaction import secrets_of
from trader.settings import Settings, Strategy, load_strategy
from trader.signal_follower import Batch, FileOffset, SignalFollower

# VenueGate is re-exported: the composition root above this one (the chat) passes a shared
# gate through without importing the venue's package.
__all__ = ["Runtime", "VenueGate", "build_runtime"]

log = logging.getLogger(__name__)

FOLLOWER_OFFSET_KEY = "follower_offset"
FOLLOW_RETRY = 1.0  # seconds


@dataclass
class Runtime:
    """Everything one process runs, built by ``build_runtime`` and torn down by ``stop``."""

    settings: Settings
    strategy: Strategy
    repo: SqliteRepositories
    engine: Engine
    follower: SignalFollower
    _follow_task: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        await self.engine.start()
        self._follow_task = asyncio.create_task(self._follow(), name="signal-follower")

    async def _follow(self) -> None:
        while True:
            try:
                # aclosing: a cancelled follower closes its generator now, not at GC time.
                async with contextlib.aclosing(self.follower.batches()) as batches:
                    async for batch in batches:
                        await self._act_on(batch)
            except Exception:
                # A failure here (a locked database, say) must not silently end trading:
                # start over from the stored offset; rows already seen are deduplicated.
                log.exception("signal follower failed; restarting it in %s s", FOLLOW_RETRY)
                await asyncio.sleep(FOLLOW_RETRY)
                await self.follower.close()
                self.follower = await _open_follower(self.settings, self.repo)

    async def _act_on(self, batch: Batch) -> None:
        for record in batch.records:
            await self.engine.handle_record(record)
        # Resume here after a restart; rows re-read before this point are deduplicated
        # by their identity anyway, so a crash between the two is harmless.
        await self.repo.set_setting(FOLLOWER_OFFSET_KEY, json.dumps(asdict(batch.offset)))

    async def halt(self) -> None:
        """Stop taking signals and stop the engine; the database stays open (the notifier
        still flushes through it)."""
        if self._follow_task is not None:
            self._follow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow_task
            self._follow_task = None
        await self.follower.close()
        await self.engine.stop()

    async def stop(self) -> None:
        await self.halt()
        await self.repo.close()


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
            exchange = PaperExchange(market, fee_rate=strategy.fee_rate, wallet=wallet, clock=clock)
        engine = Engine(
            strategy=strategy,
            exchange=exchange,
            repo=repo,
            clock=clock,
            venue_check_seconds=venue_check_seconds or VENUE_CHECK_SECONDS,
        )
        await _mirror_trades(engine, repo, settings.trades_csv_path)
        follower = await _open_follower(settings, repo)
    except BaseException:
        await repo.close()
        raise
    return Runtime(settings, strategy, repo, engine, follower)


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
    """Keep ``trades_log.csv`` equal to the closed trades: rebuilt at start, appended after."""
    await asyncio.to_thread(rewrite_trades, path, await repo.all_trades())

    async def on_event(event: Event) -> None:
        if isinstance(event, PositionClosed | PositionReduced):
            await asyncio.to_thread(append_trade, path, event.trade)

    engine.bus.subscribe(on_event)


async def _open_follower(settings: Settings, repo: SqliteRepositories) -> SignalFollower:
    """A follower of the signal log that resumes at the stored offset."""
    offset = _stored_offset(await repo.get_setting(FOLLOWER_OFFSET_KEY))
    return SignalFollower(settings.signals_path, start_offset=offset)


def _stored_offset(text: str | None) -> FileOffset | None:
    if not text:
        return None
    try:
        return FileOffset(**json.loads(text))
    except (TypeError, ValueError):
        log.warning("ignoring an unreadable stored follower offset")
        return None
