"""/start and /help: what the bot is and what it understands."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot import render
from trader.engine import Engine


async def show_help(message: Message, engine: Engine) -> None:
    await message.answer(render.help_text(engine.exchange.mode))


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    router.message.register(show_help, CommandStart(ignore_case=True))
    router.message.register(show_help, Command("help", ignore_case=True))
    return router
