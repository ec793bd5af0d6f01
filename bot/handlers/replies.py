"""Reply helpers shared by the handlers."""

from __future__ import annotations

from aiogram.types import Message

from bot import render


async def reply(message: Message, text: str) -> None:
    """Answer in the same chat, split at Telegram's message limit."""
    for part in render.split_message(text):
        await message.answer(part)


def arguments(text: str | None) -> list[str]:
    return (text or "").split()
