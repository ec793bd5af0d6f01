"""/limits, /limits NAME VALUE and /limits NAME reset: the risk limits, from chat."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot import render
from bot.handlers.replies import arguments
from trader.engine import Engine
from trader.rules import LIMIT_FIELDS

RESET_WORDS = frozenset({"reset", "default"})
USAGE = "Usage: /limits, /limits NAME VALUE or /limits NAME reset"


async def limits(message: Message, command: CommandObject, engine: Engine) -> None:
    args = arguments(command.args)
    if not args:
        await message.answer(render.limits_text(engine.limits))
        return
    if len(args) != 2:
        await message.answer(f"{USAGE}\nNames: {render.esc(', '.join(LIMIT_FIELDS))}")
        return
    name, value = args[0].lower(), args[1]
    try:
        if value.lower() in RESET_WORDS:
            updated = await engine.reset_limit(name)
            header = f"<b>{render.esc(name)}</b> is back to the strategy file's value."
        else:
            updated = await engine.set_limit(name, value)
            header = f"<b>{render.esc(name)}</b> changed."
    except ValueError as exc:
        await message.answer(f"Nothing changed: {render.esc(exc)}\n{USAGE}")
        return
    await message.answer(render.limits_text(updated, header=header))


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    router.message.register(limits, Command("limits"))
    return router
