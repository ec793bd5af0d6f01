"""Long polling of the Bot API: the start-up handshake (token check, ``deleteWebhook``,
``setMyCommands``) retried until Telegram answers, then aiogram's polling loop.

Telegram being down never stops trading: the engine runs while this keeps trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest, TelegramUnauthorizedError
from aiogram.types import BotCommand, TelegramObject

from bot import render
from trader.errors import ConfigError

log = logging.getLogger(__name__)

TOKEN_REFUSED = "TELEGRAM_BOT_TOKEN was refused by Telegram (401 Unauthorized); check the token"
HANDSHAKE_RETRY_CAP = 60.0  # seconds
HANDLER_GRACE = 10.0  # seconds a command in flight gets to finish at shutdown


async def check_token(bot: Bot, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Refuse a token Telegram rejects, before anything trades. An unreachable Telegram
    only delays the control plane, so it is not an error here."""
    try:
        async with asyncio.timeout(timeout):
            await bot.me()
    except TelegramUnauthorizedError:
        raise ConfigError(TOKEN_REFUSED) from None
    except Exception as exc:
        log.warning("Telegram is not reachable yet (%s); will keep trying", type(exc).__name__)


async def handshake(bot: Bot, retry_first: float = 1.0) -> None:
    """Identify the bot, drop any webhook (polling does not do it) and register the
    command list; retried with backoff until it succeeds."""
    delay = retry_first
    while True:
        try:
            me = await bot.me()
            await bot.delete_webhook(drop_pending_updates=False)
            try:
                await bot.set_my_commands(
                    [BotCommand(command=name, description=text) for name, text in render.COMMANDS]
                )
            except TelegramBadRequest as exc:
                # Only the command menu is missing; the commands themselves still work.
                log.error("Telegram refused the command list: %s", exc)
        except TelegramUnauthorizedError:
            raise ConfigError(TOKEN_REFUSED) from None
        except Exception as exc:
            log.warning("Telegram handshake failed (%s); retrying in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, HANDSHAKE_RETRY_CAP)
            continue
        log.info("serving Telegram as @%s", me.username)
        return


class Poller:
    """Handshake, then aiogram's long polling, in a task that ``stop`` ends for good.

    Cancelling ``start_polling`` from outside would leave its inner polling task running
    (asyncio.wait does not cancel what it waits on); ``stop_polling`` is the way out once
    polling has begun, cancellation only before.
    """

    def __init__(self, dispatcher: Dispatcher, bot: Bot, *, polling_timeout: int = 10) -> None:
        self._dispatcher = dispatcher
        self._bot = bot
        self._polling_timeout = polling_timeout
        self._polling = False
        self._handling: set[asyncio.Task[Any]] = set()
        self.task: asyncio.Task[None] | None = None
        dispatcher.update.outer_middleware(self._track)

    async def _track(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        update: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        # aiogram runs each update as a task it never waits for on stop; we do, so that a
        # press or a /close in flight finishes before the engine stops under it.
        task = asyncio.current_task()
        if task is not None:
            self._handling.add(task)
        try:
            return await handler(update, data)
        finally:
            if task is not None:
                self._handling.discard(task)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="telegram-polling")

    async def _run(self) -> None:
        await handshake(self._bot)
        # No await between this flag and start_polling taking its lock: ``stop`` sees one
        # state or the other, never a gap.
        self._polling = True
        await self._dispatcher.start_polling(
            self._bot,
            handle_signals=False,  # the process owns SIGTERM/SIGINT and stops us in order
            close_bot_session=False,
            polling_timeout=self._polling_timeout,
            allowed_updates=self._dispatcher.resolve_used_update_types(),
        )

    async def stop(self) -> None:
        task = self.task
        if task is None or task.done():
            return
        if self._polling:
            await self._dispatcher.stop_polling()
        else:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConfigError):
            await task
        if self._handling:
            _, late = await asyncio.wait(set(self._handling), timeout=HANDLER_GRACE)
            if late:
                log.warning("%d command(s) still running at shutdown", len(late))


class ConflictOnce(logging.Filter):
    """aiogram logs a 409 Conflict (another process polls with this token) every few
    seconds forever; say it once, plainly, and again only after polling recovered."""

    def __init__(self) -> None:
        super().__init__()
        self._in_conflict = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "TelegramConflictError" in message:
            if self._in_conflict:
                return False
            self._in_conflict = True
            record.msg = (
                "another process is polling Telegram with this bot token (409 Conflict); "
                "stop it: until then this bot receives no commands"
            )
            record.args = None
            return True
        if self._in_conflict and message.startswith("Sleep for"):
            return False
        if message.startswith("Connection established"):
            self._in_conflict = False
        return True
