"""The "close all?" questions asked in chat: which messages asked, until when.

An answer counts only on a message that asked (button data pressed on any other message, a
plain notification say, closes nothing), and only within ``CLOSE_ALL_BUTTON_LIFETIME``: a
forgotten button must not close everything days later. Past it, the question is edited to
say so and its buttons are taken away (``expire_due``), so nothing pressable is left.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from enum import StrEnum

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message

from bot import render
from trader.clock import Clock

log = logging.getLogger(__name__)

CLOSE_ALL_BUTTON_LIFETIME = timedelta(seconds=120)


class Answer(StrEnum):
    """What a press on a message's close-all button comes to."""

    ASKED = "asked"  # a question still open: the press decides it
    EXPIRED = "expired"  # its time ran out
    UNKNOWN = "unknown"  # not a question, or one answered already


class CloseAllQuestions:
    """One per dispatcher; the handlers record and take questions, the app's scheduler
    expires them."""

    def __init__(self, clock: Clock, lifetime: timedelta = CLOSE_ALL_BUTTON_LIFETIME) -> None:
        self._clock = clock
        self._lifetime = lifetime
        self._asked: dict[tuple[int, int], datetime] = {}  # (chat, message) → asked at
        self._expired: set[tuple[int, int]] = set()

    def add(self, message: Message, asked_at: datetime) -> None:
        self._asked[(message.chat.id, message.message_id)] = asked_at

    def take(self, message: Message) -> Answer:
        """``ASKED`` once for an open question (it is answered from then on)."""
        key = (message.chat.id, message.message_id)
        asked_at = self._asked.pop(key, None)
        if asked_at is None:
            return Answer.EXPIRED if key in self._expired else Answer.UNKNOWN
        if self._clock.now() - asked_at > self._lifetime:
            self._expired.add(key)
            return Answer.EXPIRED
        return Answer.ASKED

    def due(self) -> list[tuple[int, int]]:
        """Take every question whose time has run out: (chat, message) of each."""
        now = self._clock.now()
        late = [key for key, at in self._asked.items() if now - at > self._lifetime]
        for key in late:
            del self._asked[key]
            self._expired.add(key)
        return late

    async def expire_due(self, bot: Bot) -> None:
        """Edit each question whose time has run out: it says so, and has no buttons."""
        for chat_id, message_id in self.due():
            try:
                await bot.edit_message_text(
                    text=render.close_all_expired_text(),
                    chat_id=chat_id,
                    message_id=message_id,
                    reply_markup=None,
                )
            except TelegramAPIError as exc:  # deleted by the user, or Telegram is away
                log.warning("could not take the expired close-all buttons away: %s", exc)
