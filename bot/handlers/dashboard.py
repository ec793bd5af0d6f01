"""/profit [DAYS], /daily [N] and /performance: how the closed trades have done, all time, by
day (in ``TIMEZONE``) and by symbol."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot import render
from bot.handlers.replies import arguments, reply
from bot.handlers.status import how_many
from trader.engine import Engine
from trader.settings import Settings

MAX_PROFIT_DAYS = 3650  # ten years: any longer is all time
DEFAULT_DAILY_DAYS = 7
MAX_DAILY_DAYS = 90  # a quarter: past that, a day's line is lost in the list


async def show_profit(
    message: Message, command: CommandObject, engine: Engine, settings: Settings
) -> None:
    days: int | None = None
    if arguments(command.args):
        days = how_many(command.args, 0, MAX_PROFIT_DAYS)
        if days is None:
            await message.answer(render.profit_usage_text(MAX_PROFIT_DAYS))
            return
    view = await engine.read_models.profit(settings.timezone, days)
    await reply(message, render.profit_text(view))


async def show_daily(
    message: Message, command: CommandObject, engine: Engine, settings: Settings
) -> None:
    days = how_many(command.args, DEFAULT_DAILY_DAYS, MAX_DAILY_DAYS)
    if days is None:
        await message.answer(render.daily_usage_text(MAX_DAILY_DAYS))
        return
    view = await engine.read_models.daily(settings.timezone, days)
    await reply(message, render.daily_text(view))


async def show_performance(
    message: Message, command: CommandObject, engine: Engine, settings: Settings
) -> None:
    if arguments(command.args):
        await message.answer(render.performance_usage_text())
        return
    rows = await engine.read_models.symbol_performance(settings.timezone)
    await reply(message, render.performance_text(rows))


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    router.message.register(show_profit, Command("profit", ignore_case=True))
    router.message.register(show_daily, Command("daily", ignore_case=True))
    router.message.register(show_performance, Command("performance", ignore_case=True))
    return router
