"""/health: is the process well (the engine, the venue's streams, the signal log, the clock,
the outbox), and for how long it has run."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import render
from bot.handlers.replies import reply
from bot.health import Health


async def show_health(message: Message, health: Health) -> None:
    await reply(message, render.health_text(await health.report()))


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    router.message.register(show_health, Command("health", ignore_case=True))
    return router
