"""Secrets never reach the log: a filter on the log handlers masks the bot token and the
Bybit key and secret wherever they appear (a library's error text can quote a request URL,
and Telegram's URLs hold the token). The masking itself is ``trader.redaction``'s, which the
database's error texts go through as well.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from trader.redaction import MASK, Redactor

__all__ = ["MASK", "RedactSecrets", "install"]


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.clean = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        return True


def install(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` in everything the root logger's handlers write."""
    redact = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
