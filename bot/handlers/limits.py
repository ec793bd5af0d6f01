"""/limits, /limits NAME VALUE and /limits NAME reset: the risk limits, from chat."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot import render
from bot.handlers.replies import arguments
from trader import rules
from trader.engine import Engine
from trader.rules import LIMIT_FIELDS

log = logging.getLogger(__name__)

RESET_WORDS = frozenset({"reset", "default"})


async def limits(message: Message, command: CommandObject, engine: Engine) -> None:
    args = arguments(command.args)
    if not args:
        await message.answer(render.limits_text(engine.limits))
        return
    if len(args) != 2:
        await message.answer(render.limits_usage_text(LIMIT_FIELDS))
        return
    name, value = args[0].lower(), args[1]
    reset = value.lower() in RESET_WORDS
    try:
        change = engine.reset_limit(name) if reset else engine.set_limit(name, value)
        before, updated = await change
    except ValueError as exc:
        await message.answer(render.limit_refused_text(str(exc)))
        return
    who = message.from_user
    # Who changed a limit, and when (the log line's time): a trader with a shared chat, or an
    # auditor, can tell.
    log.info(
        "limit %s %s: %s -> %s, by user %s (@%s) in chat %s",
        name,
        "reset" if reset else "set",
        before.as_chat_names().get(name),
        updated.as_chat_names().get(name),
        who.id if who else "?",
        who.username if who and who.username else "-",
        message.chat.id,
    )
    reply = render.limit_reset_text if reset else render.limit_set_text
    text = reply(name, before, updated)
    today = engine.book.day_pnl
    if rules.daily_loss_reached(today, before) and not rules.daily_loss_reached(today, updated):
        text += "\n" + render.daily_loss_lifted_text()
    await message.answer(text)


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    router.message.register(limits, Command("limits", ignore_case=True))
    return router
