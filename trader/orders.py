"""Order identity: the ``orderLinkId`` of every order is derived from the signal it serves.

A restart that retries a signal sends the same id, so the venue refuses a second entry.
"""

from __future__ import annotations

import hashlib

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
