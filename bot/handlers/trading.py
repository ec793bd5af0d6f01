"""/start_trading, /stop_trading, /close SYMBOL and /close all (asked with buttons first)."""

from __future__ import annotations

import re

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import render
from bot.callbacks import NO, YES, CloseAllDecision
from bot.handlers.replies import arguments
from trader.engine import Engine
from trader.errors import ExchangeError

SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")
CLOSE_USAGE = "Usage: /close SYMBOL (e.g. /close SOLUSDT) or /close all"
# A forgotten "close all" button must not close everything days later.
CLOSE_ALL_BUTTON_LIFETIME = 120  # seconds


async def start_trading(message: Message, engine: Engine) -> None:
    await engine.start_trading()
    await message.answer(
        "▶️ Trading <b>ON</b>: new signals will be traded"
        + (" after your confirmation." if engine.confirmations.enabled else ".")
    )


async def stop_trading(message: Message, engine: Engine) -> None:
    await engine.stop_trading()
    await message.answer(
        "⏸ Trading <b>OFF</b>: no new signals are taken. "
        f"{len(engine.open_positions())} open positions keep their stop-loss and take-profit."
    )


async def close(message: Message, command: CommandObject, engine: Engine) -> None:
    args = arguments(command.args)
    if len(args) != 1:
        await message.answer(CLOSE_USAGE)
        return
    target = args[0].upper()
    if target == "ALL":
        await _ask_close_all(message, engine)
        return
    if not SYMBOL.match(target):
        await message.answer(f"{render.esc(args[0])} is not a symbol. {CLOSE_USAGE}")
        return
    try:
        trade = await engine.close(target)
    except ExchangeError as exc:
        await message.answer(f"⚠️ Could not close {render.esc(target)}: {render.esc(exc)}")
        return
    await message.answer(render.close_result_text(target, trade))


async def _ask_close_all(message: Message, engine: Engine) -> None:
    count = len(engine.open_positions())
    if count == 0:
        await message.answer("No open positions.")
        return
    asked = int(engine.clock.now().timestamp())
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=f"Yes, close {count}",
        callback_data=CloseAllDecision(action=YES, asked=asked, count=count),
    )
    keyboard.button(
        text="Cancel", callback_data=CloseAllDecision(action=NO, asked=asked, count=count)
    )
    await message.answer(render.close_all_question(count), reply_markup=keyboard.as_markup())


async def close_all_answered(
    query: CallbackQuery, callback_data: CloseAllDecision, engine: Engine
) -> None:
    message = query.message
    if not isinstance(message, Message):
        await query.answer("This button is no longer valid; nothing changed.")
        return
    # Taking the buttons away first makes a second press fail here: Telegram refuses to
    # remove what is already gone.
    try:
        await message.edit_reply_markup(reply_markup=InlineKeyboardMarkup(inline_keyboard=[]))
    except TelegramBadRequest:
        await query.answer("Already answered; nothing changed.")
        return
    if engine.clock.now().timestamp() - callback_data.asked > CLOSE_ALL_BUTTON_LIFETIME:
        await query.answer("This question expired; send /close all again.", show_alert=True)
        await message.edit_text("Expired: nothing was closed.")
        return
    if callback_data.action != YES:
        await query.answer("Cancelled.")
        await message.edit_text("Cancelled: nothing was closed.")
        return
    now_open = len(engine.open_positions())
    if now_open != callback_data.count:
        # The trader agreed to close what was open then; more (or fewer) are open now.
        await query.answer("Positions changed since you asked; nothing closed.", show_alert=True)
        await message.edit_text(
            f"Nothing closed: {now_open} positions are open now, not {callback_data.count}. "
            "Send /close all again."
        )
        return
    await query.answer("Closing all positions…")
    trades = await engine.close_all()
    await message.edit_text(render.close_all_result(trades, len(engine.open_positions())))


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    router.message.register(start_trading, Command("start_trading"))
    router.message.register(stop_trading, Command("stop_trading"))
    router.message.register(close, Command("close"))
    router.callback_query.register(close_all_answered, CloseAllDecision.filter())
    return router
