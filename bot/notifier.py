"""Engine events → stored outbox → every allowed chat: in order, at least once.

An event is rendered and stored in one short transaction, so the engine never waits on
Telegram; a delivery task sends what is stored, retrying with backoff. An outage or a
restart delays messages but never loses them. The notes of a booked change (an entry, a
close) are rendered by ``notes`` (``bot.notes``) for the engine, which stores them in the
change's own transaction (``attach``), so that not even a crash can part the two.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot import render
from bot.notes import EDIT, PHOTO, TEXT, UTC_ZONE, Notes
from bot.notify_settings import Kind, NotifySettings
from trader.events import Event, EventBus, is_noted
from trader.ports import NewMessage, OutboxMessage, Repositories

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``attempt`` (0-based): doubling from ``first``, capped at ``cap``."""

    first: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.first * 2 ** min(attempt, 30)))


class Refused(Exception):
    """Telegram will never take this message (blocked bot, unknown chat, bad request)."""


class Retry(Exception):
    """Delivery failed for now; try again after ``delay`` seconds."""

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Notifier:
    def __init__(
        self,
        bot: Bot,
        repo: Repositories,
        chat_ids: Sequence[int],
        *,
        backoff: Backoff | None = None,
        now: Callable[[], datetime] = _utc_now,
        zone: ZoneInfo = UTC_ZONE,
        notify: NotifySettings | None = None,
    ) -> None:
        """``zone``: the trader's time zone (``TIMEZONE``), for the times in notes.
        ``notify``: which notifications go out, and how (``/notify``; the defaults without)."""
        self.notify = notify or NotifySettings(repo)
        self.notes = Notes(chat_ids, self.notify, zone)  # what the chats are told of events
        self._bot = bot
        self._repo = repo
        self._chat_ids = list(dict.fromkeys(chat_ids))
        self._backoff = backoff or Backoff()
        # Delivery runs on real time even when the engine's clock is simulated.
        self._now = now
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- from the engine -----------------------------------------------------------------

    def attach(self, bus: EventBus) -> None:
        """Take the engine's events from ``bus``, and render the notes it stores with the
        changes they report."""
        bus.register_notes(self.notes)
        bus.subscribe(self.on_event)

    async def on_event(self, event: Event) -> None:
        """The EventBus subscriber: store what the chats should be told about ``event``,
        unless the engine stored it already with the change (then it only needs sending)."""
        if is_noted(event):
            self._wake.set()
            return
        await self._store(self.notes(event))

    # --- to the outbox ---------------------------------------------------------------------

    async def send_text(
        self,
        text: str,
        *,
        buttons: list[list[list[str]]] | None = None,
        confirm: str | None = None,
        kind: Kind = Kind.SAFETY,
    ) -> None:
        """Store ``text`` for every allowed chat (``Notes.text``)."""
        await self._store(self.notes.text(text, buttons=buttons, confirm=confirm, kind=kind))

    async def send_photo(self, png: bytes, caption: str, *, kind: Kind = Kind.SAFETY) -> None:
        await self._store(self.notes.photo(png, caption, kind=kind))

    async def _store(self, messages: list[NewMessage]) -> None:
        if messages:
            await self._repo.enqueue(messages, self._now())
            self._wake.set()

    # --- delivery ----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._deliver_forever(), name="notifier")

    async def stop(self, flush_timeout: float = 5.0) -> None:
        """Deliver what is due within ``flush_timeout`` seconds, then stop; the rest stays
        stored for the next start."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(flush_timeout):
                await self.deliver_due()

    async def _deliver_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait = await self.deliver_due()
            except Exception:
                # The database, most likely; trading goes on, and so do we after a pause.
                log.exception("notification delivery failed")
                wait = self._backoff.cap
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def deliver_due(self) -> float | None:
        """Send every message that is due, each chat's oldest first. A chat whose oldest
        message must wait holds its later ones back (each chat reads events in order) and
        never holds back another chat.

        Returns the seconds until the next retry is due (None: nothing is waiting)."""
        while True:
            next_due: datetime | None = None
            progress = False
            for message in await self._repo.next_unsent():
                if message.next_attempt_at > self._now():
                    due: datetime | None = message.next_attempt_at
                else:
                    due = await self._attempt(message)
                if due is None:
                    progress = True  # this chat's next message is up in the next pass
                else:
                    next_due = due if next_due is None else min(next_due, due)
            if not progress:
                break
        if next_due is None:
            return None
        return max(0.0, (next_due - self._now()).total_seconds())

    async def _attempt(self, message: OutboxMessage) -> datetime | None:
        """Try one message; the time of its next attempt, or None once it is done."""
        if message.chat_id not in self._chat_ids:
            # Stored for a chat that has since been removed from the allowed list.
            await self._repo.mark_sent(message.id, self._now(), error="chat no longer allowed")
            return None
        try:
            await self._send(message)
        except Refused as refused:
            # Refused for good (blocked bot, unknown chat): retrying would hold the chat's
            # queue forever, so it is recorded and dropped.
            log.error("telegram refused a message to %s for good: %s", message.chat_id, refused)
            await self._repo.mark_sent(message.id, self._now(), error=str(refused)[:500])
            return None
        except Exception as exc:
            # Anything else (network, 5xx, 429, a proxy's HTML error page, our own database)
            # leaves the message stored for another try.
            delay = exc.delay if isinstance(exc, Retry) else self._backoff.delay(message.attempts)
            reason = str(exc) if isinstance(exc, Retry) else f"{type(exc).__name__}: {exc}"
            due = self._now() + timedelta(seconds=delay)
            log.warning(
                "telegram delivery to %s failed (%s); retrying in %.1f s",
                message.chat_id,
                reason,
                delay,
            )
            await self._repo.mark_retry(message.id, due, reason[:500])
            return due
        await self._repo.mark_sent(message.id, self._now())
        return None

    async def _send(self, message: OutboxMessage) -> None:
        payload = json.loads(message.payload)
        try:
            if message.kind == TEXT:
                await self._send_text(message.chat_id, payload, silent=message.silent)
            elif message.kind == PHOTO:
                await self._bot.send_photo(
                    message.chat_id,
                    BufferedInputFile(base64.b64decode(payload["png"]), "equity.png"),
                    caption=payload.get("caption") or None,
                    disable_notification=message.silent or None,
                )
            elif message.kind == EDIT:
                await self._edit(message.chat_id, payload)
            else:
                raise Refused(f"unknown outbox kind {message.kind!r}")
        except TelegramRetryAfter as exc:
            raise Retry(float(exc.retry_after), "flood control (429)") from exc
        except TelegramMigrateToChat as exc:
            raise Refused(
                f"the group became supergroup {exc.migrate_to_chat_id}: put that id in "
                "TELEGRAM_ALLOWED_CHAT_IDS"
            ) from exc
        except (
            TelegramBadRequest,
            TelegramForbiddenError,
            TelegramNotFound,
            TelegramEntityTooLarge,
        ) as exc:
            raise Refused(str(exc)) from exc
        except TelegramUnauthorizedError as exc:
            # The token is wrong or revoked: nothing can be sent, but nothing is dropped.
            raise Retry(self._backoff.cap, "unauthorized: check TELEGRAM_BOT_TOKEN") from exc

    async def _send_text(self, chat_id: int, payload: dict[str, Any], *, silent: bool) -> None:
        text: str = payload["text"]
        markup = _markup(payload.get("buttons"))
        signal_id = payload.get("confirm")
        if signal_id is not None:
            confirmation = await self._repo.get_confirmation(signal_id)
            if confirmation is not None and confirmation.status != "pending":
                # Answered or expired while Telegram was unreachable: no buttons to press.
                text += "\n" + render.RESOLUTION_TEXT.get(confirmation.status, "")
                markup = None
        # Omitted unless silent: Telegram's default (with sound) stays the default.
        sound: dict[str, Any] = {"disable_notification": True} if silent else {}
        try:
            sent = await self._bot.send_message(chat_id, text, reply_markup=markup, **sound)
        except TelegramBadRequest as exc:
            if "parse entities" not in str(exc):
                raise
            # A rendering defect must not cost the trader the news: send it without markup.
            log.error("telegram could not parse a message's HTML (%s); sending plain text", exc)
            sent = await self._bot.send_message(
                chat_id, render.plain(text), reply_markup=markup, parse_mode=None, **sound
            )
        if signal_id is not None and markup is not None:
            await self._repo.add_confirmation_message(signal_id, chat_id, sent.message_id)

    async def _edit(self, chat_id: int, payload: dict[str, Any]) -> None:
        for chat, message_id in await self._repo.confirmation_messages(payload["signal_id"]):
            if chat != chat_id:
                continue
            try:
                await self._bot.edit_message_text(
                    text=payload["text"], chat_id=chat, message_id=message_id, reply_markup=None
                )
            except TelegramBadRequest as exc:
                # Edited already (a redelivery) or deleted by the user: nothing left to do.
                if "not modified" not in str(exc) and "not found" not in str(exc):
                    raise


def _markup(buttons: list[list[list[str]]] | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=label, callback_data=data) for label, data in row]
            for row in buttons
        ]
    )
