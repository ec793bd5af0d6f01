"""One router per feature, composed here."""

from __future__ import annotations

from aiogram import Router

from bot.close_all import CloseAllQuestions
from bot.handlers import (
    basics,
    coins,
    confirm,
    dashboard,
    fallback,
    health,
    limits,
    notify,
    status,
    trading,
)


def build_router(questions: CloseAllQuestions) -> Router:
    """``questions``: the dispatcher's close-all questions (expired by the app's scheduler)."""
    root = Router(name="bot")
    # The fallback goes last: it answers whatever no feature router took.
    root.include_routers(
        basics.build(), status.build(), trading.build(questions), limits.build(), confirm.build()
    )
    root.include_router(health.build())
    root.include_router(dashboard.build())
    root.include_routers(coins.build(), notify.build())
    root.include_router(fallback.build())
    return root
