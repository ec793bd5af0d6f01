"""What no feature router took: unknown commands, plain text, stale buttons."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot import render


async def unknown_message(message: Message) -> None:
    await message.answer(render.unknown_command_text())


async def unknown_button(query: CallbackQuery) -> None:
    await query.answer(render.stale_button_answer())


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    # In a group, chatter and other bots' commands are not for us: stay quiet there.
    router.message.register(unknown_message, F.chat.type == "private")
    router.callback_query.register(unknown_button)
    return router
