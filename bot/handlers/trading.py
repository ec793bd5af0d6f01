"""/start_trading, /stop_trading, /close SYMBOL and /close all (asked with buttons first)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import render
from bot.callbacks import NO, YES, CloseAllDecision
from bot.close_all import Answer, CloseAllQuestions
from bot.handlers.replies import arguments
from bot.notify_settings import Kind, Mode, NotifySettings
from trader import rules
from trader.engine import Engine
from trader.errors import ExchangeError
from trader.events import PositionClosed, PositionReduced


async def start_trading(message: Message, engine: Engine) -> None:
    already = engine.trading_enabled
    await engine.start_trading()
    await message.answer(render.trading_on_text(engine.confirmations.enabled, already=already))


async def stop_trading(message: Message, engine: Engine) -> None:
    already = not engine.trading_enabled
    await engine.stop_trading()
    open_count = len(engine.open_positions())
    await message.answer(render.trading_off_text(open_count, already=already))


async def close(
    message: Message,
    command: CommandObject,
    engine: Engine,
    questions: CloseAllQuestions,
    notify: NotifySettings,
) -> None:
    args = arguments(command.args)
    if len(args) != 1:
        await message.answer(render.close_usage_text())
        return
    if args[0].upper() == "ALL":
        await _ask_close_all(message, engine, questions)
        return
    if not rules.looks_like_symbol(args[0]):
        await message.answer(render.not_a_symbol_text(args[0]))
        return
    target = rules.full_symbol(args[0])  # "doge" means DOGEUSDT
    try:
        trade = await engine.close(target)
    except ExchangeError as exc:
        await message.answer(render.close_failed_text(target, str(exc)))
        return
    if trade is None:
        await message.answer(render.no_position_text(target))
    elif notify.mode(Kind.CLOSED) is Mode.OFF:  # no note (/notify closed off): a reply
        tick = await engine.exits.tick_size(target)
        rest = engine.book.positions.get(target)
        if trade.part and rest is not None:  # a part filled: the rest stays open, said so
            await message.answer(render.reduced_text(PositionReduced(trade, rest, tick)))
        else:  # the position's last part: the reply says the trade's total too
            earlier = await engine.exits.earlier_parts(trade)
            closed = PositionClosed(trade, tick, earlier=earlier)
            await message.answer(render.closed_text(closed))
    # Else the close's own note (PositionClosed, or PositionReduced for a part) is the one
    # reply: it goes to every allowed chat with the trade's figures at the venue's tick.


async def _ask_close_all(message: Message, engine: Engine, questions: CloseAllQuestions) -> None:
    count = len(engine.open_positions())
    if count == 0:
        await message.answer(render.no_open_positions_text())
        return
    asked_at = engine.clock.now()  # before the question is out: its lifetime starts here
    asked = int(asked_at.timestamp())
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=render.close_all_yes_button(count),
        callback_data=CloseAllDecision(action=YES, asked=asked, count=count),
    )
    keyboard.button(
        text=render.close_all_cancel_button(),
        callback_data=CloseAllDecision(action=NO, asked=asked, count=count),
    )
    asked_in = await message.answer(
        render.close_all_question(count), reply_markup=keyboard.as_markup()
    )
    questions.add(asked_in, asked_at)


async def close_all_answered(
    query: CallbackQuery,
    callback_data: CloseAllDecision,
    engine: Engine,
    questions: CloseAllQuestions,
) -> None:
    message = query.message
    if not isinstance(message, Message):
        await query.answer(render.stale_button_answer())
        return
    answer = questions.take(message)
    if answer is Answer.EXPIRED:
        await query.answer(render.close_all_expired_answer(), show_alert=True)
        with contextlib.suppress(TelegramBadRequest):  # edited on expiry already
            await message.edit_text(render.close_all_expired_text())
        return
    if answer is Answer.UNKNOWN:
        # Not a message that asked (or one answered already): its buttons are taken away
        # below for a real question, so a second press lands here too.
        await query.answer(render.already_answered_answer())
        return
    # Taking the buttons away first makes a second press fail here: Telegram refuses to
    # remove what is already gone.
    try:
        await message.edit_reply_markup(reply_markup=InlineKeyboardMarkup(inline_keyboard=[]))
    except TelegramBadRequest:
        await query.answer(render.already_answered_answer())
        return
    if callback_data.action != YES:
        await query.answer(render.close_all_cancelled_answer())
        await message.edit_text(render.close_all_cancelled_text())
        return
    now_open = len(engine.open_positions())
    if now_open != callback_data.count:
        # The trader agreed to close what was open then; more (or fewer) are open now.
        await query.answer(render.positions_changed_answer(), show_alert=True)
        await message.edit_text(render.positions_changed_text(now_open, callback_data.count))
        return
    await query.answer(render.closing_all_answer())
    trades = await engine.close_all()
    await message.edit_text(render.close_all_result(trades, len(engine.open_positions())))


def build(questions: CloseAllQuestions) -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several), answering
    the close-all ``questions`` of its dispatcher."""
    router = Router(name=__name__)
    router.message.middleware(_inject(questions))
    router.callback_query.middleware(_inject(questions))
    router.message.register(start_trading, Command("start_trading", ignore_case=True))
    router.message.register(stop_trading, Command("stop_trading", ignore_case=True))
    router.message.register(close, Command("close", ignore_case=True))
    router.callback_query.register(close_all_answered, CloseAllDecision.filter())
    return router


def _inject(questions: CloseAllQuestions) -> Callable[..., Awaitable[Any]]:
    """A middleware handing the router's ``CloseAllQuestions`` to its handlers."""

    async def middleware(
        handler: Callable[[Any, dict[str, Any]], Awaitable[Any]],
        event: Any,
        data: dict[str, Any],
    ) -> Any:
        data["questions"] = questions
        return await handler(event, data)

    return middleware
