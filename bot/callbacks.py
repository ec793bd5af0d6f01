"""Typed, versioned payloads of the inline buttons (Telegram allows 64 bytes of data).

A new payload shape gets a new prefix, so a button on an old message never means something
else after an upgrade.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class TradeDecision(CallbackData, prefix="td1"):
    """✅ Open / ❌ Skip on a confirmation-mode question."""

    action: str  # "open" or "skip"
    ref: str  # the question's reference (``trader.confirmation.confirmation_ref``)


class CloseAllDecision(CallbackData, prefix="ca1"):
    """The yes/no under ``/close all``: ``asked`` (epoch seconds) lets an old button expire,
    ``count`` is how many positions the trader agreed to close."""

    action: str  # "yes" or "no"
    asked: int
    count: int


OPEN = "open"
SKIP = "skip"
YES = "yes"
NO = "no"
