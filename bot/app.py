"""The composition root: the trading runtime (``trader.runtime``) with its Telegram control
plane around it (dispatcher, notifier, reporter, scheduler, polling), run until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from datetime import UTC
from zoneinfo import ZoneInfo

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot import render
from bot.close_all import CloseAllQuestions
from bot.handlers import build_router
from bot.health import RECONNECT_GRACE, Health, HealthServer
from bot.metrics import Metrics
from bot.middlewares import AllowedChats
from bot.notes import UTC_ZONE
from bot.notifier import Backoff, Notifier
from bot.notify_settings import NotifySettings
from bot.polling import ConflictOnce, Poller, check_token
from bot.reports import Reporter
from trader.clock import Clock, SystemClock
from trader.engine import Engine
from trader.errors import ConfigError
from trader.events import Event
from trader.runtime import Runtime, VenueGate, build_runtime
from trader.settings import Settings

log = logging.getLogger(__name__)

QUESTION_SWEEP_SECONDS = 1  # how soon an expired "close all?" loses its buttons


@dataclass
class App:
    """The whole process: the trading runtime and its Telegram control plane."""

    runtime: Runtime
    bot: Bot
    dispatcher: Dispatcher
    notifier: Notifier
    reporter: Reporter
    scheduler: AsyncIOScheduler
    poller: Poller
    health_server: HealthServer | None = None  # HEALTH_PORT set: /healthz and /metrics
    zone: ZoneInfo = UTC_ZONE  # TIMEZONE: the days of /daily
    _stopped: bool = field(default=False, init=False)

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    async def start(self) -> None:
        if self.health_server is not None:  # first: a monitor sees a start-up that waits
            await self.health_server.start()
        await check_token(self.bot)
        self.notifier.start()  # first: the engine's "started" goes through it
        # Commands are answered from here on, /status too while Bybit does not answer yet.
        self.poller.start()
        try:
            await self.runtime.start()
        except ConfigError as exc:
            # Refused to trade (a key that can withdraw, say): say so in chat as well; the
            # outbox is flushed as the process stops.
            await self.notifier.send_text(render.refused_text(str(exc)))
            raise
        self.scheduler.start()
        self.engine.count_views(self.zone)  # the first /profit then answers at once

    async def stop(self) -> None:
        """Polling stops, the engine stops taking signals (positions keep their SL/TP), the
        outbox is flushed where possible, the database is closed."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.health_server is not None:
                await self.health_server.stop()
            await self.poller.stop()
            if self.scheduler.running:
                self.scheduler.shutdown(wait=False)
            await self.runtime.halt()
            await self.notifier.stop()
        finally:
            await self.runtime.repo.close()
            await self.bot.session.close()


async def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    backoff: Backoff | None = None,
    polling_timeout: int = 10,
    venue_gate: VenueGate | None = None,
    health_grace: float = RECONNECT_GRACE,
) -> App:
    """Wire the whole process from settings (``python -m bot`` and the tests use this).
    ``health_grace``: seconds a stream may be reconnecting and the process still healthy."""
    clock = clock or SystemClock()
    runtime = await build_runtime(settings, clock=clock, venue_gate=venue_gate)
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    bot = Bot(
        token=settings.telegram_bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )
    chats = settings.telegram_allowed_chat_ids
    notify = await NotifySettings.load(runtime.repo)  # what /notify set, before any note
    notifier = Notifier(
        bot, runtime.repo, chats, backoff=backoff, zone=settings.timezone, notify=notify
    )
    notifier.attach(runtime.engine.bus)
    reporter = Reporter(runtime.engine, notifier, clock, settings.timezone)
    health = Health(runtime.engine, grace=health_grace)
    dispatcher = Dispatcher(
        engine=runtime.engine, reporter=reporter, settings=settings, health=health, notify=notify
    )
    allowed = AllowedChats(chats)
    dispatcher.message.outer_middleware(allowed)
    dispatcher.edited_message.outer_middleware(allowed)
    dispatcher.callback_query.outer_middleware(allowed)
    questions = CloseAllQuestions(clock)
    dispatcher.include_router(build_router(questions))
    scheduler = AsyncIOScheduler(timezone=UTC)
    if settings.report_interval_minutes > 0:
        scheduler.add_job(
            reporter.send_scheduled,
            IntervalTrigger(minutes=settings.report_interval_minutes, timezone=UTC),
            id="report",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=60,
        )
    # An unanswered "close all?" loses its buttons once it has expired.
    scheduler.add_job(
        questions.expire_due,
        IntervalTrigger(seconds=QUESTION_SWEEP_SECONDS, timezone=UTC),
        args=[bot],
        id="close-all-expiry",
        coalesce=True,
        max_instances=1,
    )
    poller = Poller(dispatcher, bot, polling_timeout=polling_timeout)
    server = None
    if settings.health_port is not None:
        metrics = Metrics(runtime.engine, health)
        metrics.attach(runtime.engine.bus)
        server = HealthServer(health, metrics, host=settings.health_host, port=settings.health_port)
    return App(
        runtime, bot, dispatcher, notifier, reporter, scheduler, poller, server, settings.timezone
    )


async def run(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly (open positions keep their SL/TP)."""
    app = await build_app(settings)

    async def log_events(event: Event) -> None:
        log.info("%s", event)

    app.engine.bus.subscribe(log_events)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logging.getLogger("aiogram.dispatcher").addFilter(ConflictOnce())
    try:
        # Start-up may wait for Bybit (it is asked again until it answers): a SIGTERM
        # meanwhile stops the process rather than waiting for it.
        stopping = asyncio.create_task(stop.wait())
        starting = asyncio.create_task(app.start())
        await asyncio.wait({stopping, starting}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            log.info("stopping before start-up finished")
            return
        stopping.cancel()
        starting.result()  # a refused key ends the process with its one line
        log.info(
            "engine running in %s mode; trading %s; following %s",
            app.engine.exchange.mode,
            "on" if app.engine.trading_enabled else "off",
            settings.signals_path,
        )
        polling = app.poller.task
        assert polling is not None
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({stopping, polling}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        if polling.done() and not polling.cancelled():
            polling.result()  # a refused token ends the process with its one line
        log.info("stopping")
    finally:
        await app.stop()
