"""Engine events → stored outbox → every allowed chat: in order, at least once.

An event is rendered and stored in one short transaction, so the engine never waits on
Telegram; a delivery task sends what is stored, retrying with backoff. An outage or a
restart delays messages but never loses them. The notes of a booked change (an entry, a
close) are rendered by ``notes`` for the engine, which stores them in the change's own
transaction (``attach``), so that not even a crash can part the two.
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
from bot.callbacks import OPEN, SKIP, TradeDecision
from trader.events import (
    ClockSkewed,
    ConfirmationRequested,
    ConfirmationResolved,
    DailyLossLimitReached,
    EngineStarted,
    EngineStopped,
    Event,
    EventBus,
    OrderFailed,
    PositionClosed,
    PositionOpened,
    PositionReduced,
    Reconciled,
    SignalLogMissing,
    SignalLogResumed,
    SignalLogSilent,
    SignalSkipped,
    VenueBanLifted,
    VenueBanned,
    VenueReachable,
    VenueUnreachable,
    is_noted,
)
from trader.ports import NewMessage, OutboxMessage, Repositories

log = logging.getLogger(__name__)

UTC_ZONE = ZoneInfo("UTC")

TEXT, PHOTO, EDIT = "text", "photo", "edit"
# Risk rejections that would repeat for every signal: said once elsewhere, or by design.
QUIET_REJECTIONS = frozenset({"trading_disabled", "daily_loss_limit"})


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
    ) -> None:
        """``zone``: the trader's time zone (``TIMEZONE``), for the times in notes."""
        self._bot = bot
        self._zone = zone
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

    def notes(self, event: Event) -> list[NewMessage]:
        """What the chats are told about ``event``: pure and synchronous, so the engine can
        store it in the transaction that books the change (``trader.events.Notes``)."""
        match event:
            case PositionOpened():
                return self._texts(render.opened_text(event))
            case PositionClosed():
                return self._texts(render.closed_text(event))
            case PositionReduced():
                return self._texts(render.reduced_text(event))
            case OrderFailed():
                return self._texts(render.order_failed_text(event))
            case Reconciled():
                return self._texts(render.reconciled_text(event))
            case DailyLossLimitReached():
                return self._texts(render.daily_loss_text(event))
            case EngineStarted():
                return self._texts(render.engine_started_text(event))
            case EngineStopped():
                return self._texts(render.engine_stopped_text(event))
            case VenueBanned():
                return self._texts(render.venue_banned_text(event, self._zone))
            case VenueBanLifted():
                return self._texts(render.venue_ban_lifted_text(event))
            case ClockSkewed():
                return self._texts(render.clock_skewed_text(event))
            case VenueUnreachable():
                return self._texts(render.venue_unreachable_text(event))
            case VenueReachable():
                return self._texts(render.venue_reachable_text(event))
            case SignalLogSilent():
                return self._texts(render.signal_log_silent_text(event, self._zone))
            case SignalLogResumed():
                return self._texts(render.signal_log_resumed_text(event))
            case SignalLogMissing():
                return self._texts(render.signal_log_missing_text(event))
            case ConfirmationRequested():
                return self._question(event)
            case ConfirmationResolved():
                text = render.resolved_text(event.symbol, event.signal, event.status, event.detail)
                payload = json.dumps({"signal_id": event.signal_id, "text": text})
                return [NewMessage(chat, EDIT, payload) for chat in self._chat_ids]
            case SignalSkipped(outcome=outcome) if outcome.startswith("rejected:"):
                reason = outcome.removeprefix("rejected:")
                if reason in QUIET_REJECTIONS:
                    return []
                return self._texts(render.rejected_text(event.symbol, reason))
            case _:
                return []  # filtered and invalid rows are logged, not announced

    def _question(self, event: ConfirmationRequested) -> list[NewMessage]:
        buttons = [
            [
                ["✅ Open", TradeDecision(action=OPEN, ref=event.ref).pack()],
                ["❌ Skip", TradeDecision(action=SKIP, ref=event.ref).pack()],
            ]
        ]
        return self._texts(
            render.question_text(event, self._zone), buttons=buttons, confirm=event.signal.id
        )

    # --- to the outbox ---------------------------------------------------------------------

    async def send_text(
        self,
        text: str,
        *,
        buttons: list[list[list[str]]] | None = None,
        confirm: str | None = None,
    ) -> None:
        """Store ``text`` for every allowed chat, split at Telegram's limit; the buttons go
        on the last part."""
        await self._store(self._texts(text, buttons=buttons, confirm=confirm))

    def _texts(
        self,
        text: str,
        *,
        buttons: list[list[list[str]]] | None = None,
        confirm: str | None = None,
    ) -> list[NewMessage]:
        parts = render.split_message(text)
        messages = []
        for chat in self._chat_ids:
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                payload: dict[str, Any] = {"text": part}
                if last and buttons:
                    payload["buttons"] = buttons
                if last and confirm:
                    payload["confirm"] = confirm
                messages.append(NewMessage(chat, TEXT, json.dumps(payload)))
        return messages

    async def send_photo(self, png: bytes, caption: str) -> None:
        payload = json.dumps(
            {
                "png": base64.b64encode(png).decode("ascii"),
                "caption": caption[: render.CAPTION_LIMIT],
            }
        )
        await self._store([NewMessage(chat, PHOTO, payload) for chat in self._chat_ids])

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
                await self._send_text(message.chat_id, payload)
            elif message.kind == PHOTO:
                await self._bot.send_photo(
                    message.chat_id,
                    BufferedInputFile(base64.b64decode(payload["png"]), "equity.png"),
                    caption=payload.get("caption") or None,
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

    async def _send_text(self, chat_id: int, payload: dict[str, Any]) -> None:
        text: str = payload["text"]
        markup = _markup(payload.get("buttons"))
        signal_id = payload.get("confirm")
        if signal_id is not None:
            confirmation = await self._repo.get_confirmation(signal_id)
            if confirmation is not None and confirmation.status != "pending":
                # Answered or expired while Telegram was unreachable: no buttons to press.
                text += "\n" + render.RESOLUTION_TEXT.get(confirmation.status, "")
                markup = None
        try:
            sent = await self._bot.send_message(chat_id, text, reply_markup=markup)
        except TelegramBadRequest as exc:
            if "parse entities" not in str(exc):
                raise
            # A rendering defect must not cost the trader the news: send it without markup.
            log.error("telegram could not parse a message's HTML (%s); sending plain text", exc)
            sent = await self._bot.send_message(
                chat_id, render.plain(text), reply_markup=markup, parse_mode=None
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
