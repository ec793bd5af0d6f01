"""/status, /trades [N] and /report: what the engine holds and how it has done."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message

from bot import render
from bot.handlers.replies import arguments, reply
from bot.reports import Reporter
from trader.engine import Engine
from trader.settings import Settings

DEFAULT_TRADES = 10
MAX_TRADES = 100
DEFAULT_SIGNALS = 10
MAX_SIGNALS = 50


async def show_status(message: Message, engine: Engine, settings: Settings) -> None:
    if not engine.loaded:  # the first moments of a start: the book is not read yet
        await reply(message, render.starting_text())
        return
    await reply(message, render.status_text(await engine.status(), settings.timezone))


async def show_trades(
    message: Message, command: CommandObject, engine: Engine, settings: Settings
) -> None:
    count = how_many(command.args, DEFAULT_TRADES, MAX_TRADES)
    if count is None:
        await message.answer(render.trades_usage_text(MAX_TRADES))
        return
    await reply(message, render.trades_text(await engine.recent_trades(count), settings.timezone))


async def show_signals(
    message: Message, command: CommandObject, engine: Engine, settings: Settings
) -> None:
    count = how_many(command.args, DEFAULT_SIGNALS, MAX_SIGNALS)
    if count is None:
        await message.answer(render.signals_usage_text(MAX_SIGNALS))
        return
    signals = await engine.read_models.recent_signals(count)
    await reply(message, render.signals_text(signals, settings.timezone))


def how_many(raw: str | None, default: int, most: int) -> int | None:
    """The optional count of ``/trades [N]`` and ``/signals [N]``; None when it is not a
    whole number from 1 to ``most``."""
    args = arguments(raw)
    if not args:
        return default
    if len(args) > 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= most:
        return None
    return int(args[0])


async def show_report(message: Message, reporter: Reporter) -> None:
    report = await reporter.build()
    await reply(message, report.text)
    if report.chart is not None:
        await message.answer_photo(
            BufferedInputFile(report.chart, "equity.png"), caption=report.caption
        )


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    router.message.register(show_status, Command("status", ignore_case=True))
    router.message.register(show_trades, Command("trades", ignore_case=True))
    router.message.register(show_signals, Command("signals", ignore_case=True))
    router.message.register(show_report, Command("report", ignore_case=True))
    return router
