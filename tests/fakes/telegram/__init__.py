"""A fake Telegram Bot API on 127.0.0.1 (aiohttp): the real aiogram client talks to it in tests.

Tests inject user messages and button presses and failures, then read what the bot sent.

Modules: ``common`` (Telegram's errors, request parameters, the call record, users and chats),
``html_mode`` (Telegram's HTML parse mode), ``validation`` (what Telegram refuses in a message),
``messages`` (the bot's messages: sending, editing, deleting, reading), ``updates`` (what users
do: the update queue, getUpdates' long poll, callback answers), ``profile`` (getMe, the command
menu), ``faults`` (injected failures), ``server`` (``FakeTelegram``: lifecycle and routing).
"""

from tests.fakes.telegram.common import Call
from tests.fakes.telegram.html_mode import HtmlParseError, parse_html, utf16_len
from tests.fakes.telegram.messages import NOT_MODIFIED, PNG_SIGNATURE, SentMessage
from tests.fakes.telegram.server import (
    DEFAULT_TOKEN,
    MAX_REQUEST_BYTES,
    FakeTelegram,
    TelegramWaitTimeout,
)
from tests.fakes.telegram.updates import CONFLICT, FIRST_UPDATE_ID, QUERY_INVALID, CallbackAnswer
from tests.fakes.telegram.validation import CALLBACK_DATA_LIMIT, CAPTION_LIMIT, TEXT_LIMIT

__all__ = [
    "CALLBACK_DATA_LIMIT",
    "CAPTION_LIMIT",
    "CONFLICT",
    "DEFAULT_TOKEN",
    "FIRST_UPDATE_ID",
    "MAX_REQUEST_BYTES",
    "NOT_MODIFIED",
    "PNG_SIGNATURE",
    "QUERY_INVALID",
    "TEXT_LIMIT",
    "Call",
    "CallbackAnswer",
    "FakeTelegram",
    "HtmlParseError",
    "SentMessage",
    "TelegramWaitTimeout",
    "parse_html",
    "utf16_len",
]
