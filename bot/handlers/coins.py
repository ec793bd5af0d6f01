"""/coins, and /coins add|remove|exclude|include SYMBOL... or /coins reset: the whitelist
and the blacklist, from chat."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot import render
from bot.handlers.replies import arguments, reply
from trader.coins import parse_action
from trader.engine import Engine


async def coins(message: Message, command: CommandObject, engine: Engine) -> None:
    args = arguments(command.args)
    if not args:
        await reply(message, render.coins_text(engine.coins.lists))
        return
    try:
        edit = await engine.coins.edit(parse_action(args[0]), args[1:])
    except ValueError as exc:
        await message.answer(render.coins_refused_text(str(exc)))
        return
    await reply(message, render.coins_edit_text(edit))


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    router.message.register(coins, Command("coins", ignore_case=True))
    return router
