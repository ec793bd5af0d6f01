"""The composition root: settings → storage → exchange → engine → signal follower, run until
SIGTERM. (The Telegram dispatcher and scheduler plug in here next.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

from storage.export import append_trade, rewrite_trades
from storage.repositories import SqliteRepositories
from trader.clock import Clock, SystemClock
from trader.engine import Engine
from trader.errors import ConfigError
from trader.events import Event, PositionClosed
from trader.exchange.market import BybitMarketData
from trader.exchange.paper import PaperExchange
from trader.settings import Settings, Strategy, load_strategy
from trader.signals import Batch, FileOffset, SignalFollower

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

    async def stop(self) -> None:
        if self._follow_task is not None:
            self._follow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow_task
        await self.follower.close()
        await self.engine.stop()
        await self.repo.close()


async def build_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    """Wire the process from settings. Raises ``ConfigError`` with one line on bad input."""
    clock = clock or SystemClock()
    strategy = load_strategy(settings.strategy_path)
    if settings.trading_mode != "paper":
        raise ConfigError(
            "TRADING_MODE=live is not available in this version yet; use TRADING_MODE=paper"
        )
    repo = await SqliteRepositories.open(settings.db_path)
    try:
        positions = await repo.open_positions()
        # The paper wallet is derived, never stored: it cannot drift from the trades.
        wallet = (
            strategy.paper_balance_usdt
            + await repo.net_pnl_total()
            - sum((p.entry_fee for p in positions), Decimal(0))
        )
        market = BybitMarketData(settings.rest_url, settings.ws_public_url)
        exchange = PaperExchange(market, fee_rate=strategy.fee_rate, wallet=wallet, clock=clock)
        engine = Engine(strategy=strategy, exchange=exchange, repo=repo, clock=clock)
        await _mirror_trades(engine, repo, settings.trades_csv_path)
        follower = await _open_follower(settings, repo)
    except BaseException:
        await repo.close()
        raise
    return Runtime(settings, strategy, repo, engine, follower)


async def _mirror_trades(engine: Engine, repo: SqliteRepositories, path: Path) -> None:
    """Keep ``trades_log.csv`` equal to the closed trades: rebuilt at start, appended after."""
    await asyncio.to_thread(rewrite_trades, path, await repo.all_trades())

    async def on_event(event: Event) -> None:
        if isinstance(event, PositionClosed):
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


async def run(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly (open positions keep their SL/TP)."""
    runtime = await build_runtime(settings)

    async def log_events(event: Event) -> None:
        log.info("%s", event)

    runtime.engine.bus.subscribe(log_events)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.start()
        log.info(
            "engine running in %s mode; trading %s; following %s",
            runtime.engine.exchange.mode,
            "on" if runtime.engine.trading_enabled else "off",
            settings.signals_path,
        )
        await stop.wait()
        log.info("stopping")
    finally:
        await runtime.stop()
