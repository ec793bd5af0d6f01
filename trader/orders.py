"""Order identity and outcome: the ``orderLinkId`` of every order is derived from the signal it
serves; a failed order is recorded by what its failure says of it.

A restart that retries a signal sends the same id, so the venue refuses a second entry.
"""

from __future__ import annotations

import hashlib

from trader.errors import OrderRejected, OutcomeUnknown
from trader.ports import OrderStatus

MAX_LINK_ID = 36  # Bybit's limit; letters, digits, "-" and "_" only


def _digest(signal_id: str) -> str:
    return hashlib.sha1(signal_id.encode("utf-8")).hexdigest()[:30]


def entry_link_id(signal_id: str) -> str:
    """The one ``orderLinkId`` a signal's entry may ever use."""
    return f"sig-{_digest(signal_id)}"


def exit_link_id(signal_id: str, attempt: int = 0) -> str:
    """``orderLinkId`` of the closing order of a signal's position (attempt n for retries:
    Bybit refuses a link id it has seen, so each attempt has its own)."""
    if not attempt:
        return f"ex-{_digest(signal_id)}"
    suffix = f"-{attempt}"
    return f"ex-{_digest(signal_id)[: MAX_LINK_ID - 3 - len(suffix)]}{suffix}"


def order_status(exc: Exception) -> OrderStatus:
    """How a failed order is recorded: refused, unknown (to be looked up), or failed."""
    if isinstance(exc, OrderRejected):
        return OrderStatus.REJECTED
    if isinstance(exc, OutcomeUnknown):
        return OrderStatus.UNKNOWN
    return OrderStatus.FAILED


def short(text: str, limit: int = 200) -> str:
    """An error message fit for an outcome column and a chat line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
