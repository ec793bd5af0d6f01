"""/notify and /notify EVENT on|silent|off: which notifications the chats get, and how."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot import render
from bot.handlers.replies import arguments
from bot.notify_settings import NotifySettings


async def notify(message: Message, command: CommandObject, notify: NotifySettings) -> None:
    args = arguments(command.args)
    if not args:
        await message.answer(render.notify_text(notify.modes()))
        return
    if len(args) != 2:
        await message.answer(render.notify_usage_text())
        return
    try:
        change = await notify.set(args[0], args[1])
    except ValueError as exc:
        await message.answer(render.notify_refused_text(str(exc)))
        return
    await message.answer(render.notify_changed_text(change, notify.modes()))


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    router.message.register(notify, Command("notify", ignore_case=True))
    return router
