"""Authorisation: only the chats in ``TELEGRAM_ALLOWED_CHAT_IDS`` are served.

Anything else gets no reply and changes nothing; the attempt is logged with the command
name only, never the message's contents.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class AllowedChats(BaseMiddleware):
    """An outer middleware for messages and callback queries."""

    def __init__(self, chat_ids: Iterable[int]) -> None:
        self._allowed = frozenset(chat_ids)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat_id = _chat_id(event)
        if chat_id is not None and chat_id in self._allowed:
            return await handler(event, data)
        user = getattr(getattr(event, "from_user", None), "id", None)
        log.warning("ignored %s from unauthorised chat %s (user %s)", _what(event), chat_id, user)
        return None


def _chat_id(event: TelegramObject) -> int | None:
    if isinstance(event, Message):
        return event.chat.id
    if isinstance(event, CallbackQuery):
        # An inline-mode button has no message; it belongs to no chat we serve.
        return event.message.chat.id if event.message is not None else None
    return None


def _what(event: TelegramObject) -> str:
    """The command name, or the kind of update: never the contents."""
    if isinstance(event, CallbackQuery):
        return "a button press"
    if isinstance(event, Message) and event.text and event.text.startswith("/"):
        command = event.text.split(maxsplit=1)[0].split("@", 1)[0]
        return command[:33]  # Telegram commands are at most 32 characters
    return "a message"
