"""One router per feature, composed here."""

from __future__ import annotations

from aiogram import Router

from bot.handlers import basics, confirm, fallback, limits, status, trading


def build_router() -> Router:
    root = Router(name="bot")
    # The fallback goes last: it answers whatever no feature router took.
    root.include_routers(
        basics.build(), status.build(), trading.build(), limits.build(), confirm.build()
    )
    root.include_router(fallback.build())
    return root
