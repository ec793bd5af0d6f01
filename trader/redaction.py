"""Secrets masked out of text: the bot token and the Bybit API key and secret.

One rule for every place text leaves the process's memory: the log handlers (``bot.redact``)
and every error text the database stores (``storage``). A library's error text can quote a
request URL, and Telegram's URLs hold the token (``https://api.telegram.org/bot<token>/...``).
"""

from __future__ import annotations

from collections.abc import Iterable

from trader.settings import Settings

MASK = "***"
# Shorter strings are no secret worth the false positives of masking them everywhere.
MIN_SECRET_LENGTH = 6
# The shortest head of a secret masked at the end of a text: error texts are cut to fit a
# column or a chat line, and a cut can fall inside a secret.
MIN_CUT_LENGTH = 4
_ELLIPSES = ("…", "...")


class Redactor:
    """Masks the given secrets wherever they appear in a text, and the head of one that a
    truncation left at its end."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return self._mask_cut_tail(text)

    def _mask_cut_tail(self, text: str) -> str:
        body, ellipsis = text, ""
        for mark in _ELLIPSES:
            if text.endswith(mark):
                body, ellipsis = text[: -len(mark)], mark
                break
        for secret in self._secrets:
            for length in range(len(secret) - 1, MIN_CUT_LENGTH - 1, -1):
                if body.endswith(secret[:length]):
                    return body[:-length] + MASK + ellipsis
        return text


def secrets_of(settings: Settings) -> list[str]:
    """What must never be written out: the bot token (also its part after the colon, which
    is the secret half and may appear on its own, URL-encoded around the colon), and the
    Bybit key and secret when they are set."""
    token = settings.telegram_bot_token.get_secret_value()
    secrets = [token, token.partition(":")[2]]
    for secret in (settings.bybit_api_key, settings.bybit_api_secret):
        if secret is not None:
            secrets.append(secret.get_secret_value())
    return secrets
