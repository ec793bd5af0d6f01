"""/confirm on|off and the ✅ Open / ❌ Skip buttons of confirmation mode."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot import render
from bot.callbacks import OPEN, SKIP, TradeDecision
from bot.handlers.replies import arguments
from trader.confirmation import Verdict
from trader.engine import Engine

SWITCH = {"on": True, "off": False}
# A press that changed nothing is explained in a popup the trader has to dismiss.
ALERTS = frozenset(Verdict) - {Verdict.OPENING, Verdict.DECLINED}


async def confirm_mode(message: Message, command: CommandObject, engine: Engine) -> None:
    args = arguments(command.args)
    if len(args) != 1 or args[0].lower() not in SWITCH:
        await message.answer(render.confirm_usage_text(engine.confirmations.enabled))
        return
    enabled = SWITCH[args[0].lower()]
    await engine.set_confirm_mode(enabled)
    timeout = engine.strategy.confirm_timeout_seconds
    await message.answer(render.confirm_mode_text(enabled, timeout))


async def trade_decision(
    query: CallbackQuery, callback_data: TradeDecision, engine: Engine
) -> None:
    if callback_data.action not in (OPEN, SKIP) or query.message is None:
        await query.answer(render.not_a_pending_trade_answer())
        return
    origin = (query.message.chat.id, query.message.message_id)
    decision = await engine.decide(callback_data.ref, callback_data.action == OPEN, origin)
    await query.answer(render.decision_answer(decision), show_alert=decision.verdict in ALERTS)


def build() -> Router:
    """A fresh router (a router joins one dispatcher only; tests build several)."""
    router = Router(name=__name__)
    router.message.register(confirm_mode, Command("confirm", ignore_case=True))
    router.callback_query.register(trade_decision, TradeDecision.filter())
    return router
