"""What the fake Telegram refuses in a message the bot sends or edits, with Telegram's 400s:
chat and message ids, the parse mode, text and caption limits, inline keyboards."""

from __future__ import annotations

from typing import Any

from tests.fakes.telegram.common import Params, bad_request
from tests.fakes.telegram.html_mode import HtmlParseError, parse_html, utf16_len

# Limits are counted in UTF-16 code units, the unit of Telegram's entity offsets: an emoji
# outside the BMP counts 2. That is the stricter reading of "4096 characters", so text the fake
# accepts is never too long for Telegram.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes of UTF-8

_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def chat_id(params: Params) -> int:
    value = params.text("chat_id")
    if value is None:
        raise bad_request("chat_id is empty")
    try:
        return int(value)
    except ValueError:
        raise bad_request("chat not found") from None


def message_id(params: Params) -> int:
    found = params.integer("message_id", missing="message identifier is not specified")
    assert found is not None
    return found


def parse_mode(params: Params) -> str | None:
    mode = params.text("parse_mode")
    if mode is not None and mode.lower() not in ("html", "markdown", "markdownv2"):
        raise bad_request("unsupported parse_mode")
    return mode


def render(
    text: str, parse_mode: str | None, *, caption: bool
) -> tuple[str, tuple[dict[str, Any], ...]]:
    """The plain text and entities of a message text or caption; Telegram's 400s."""
    if parse_mode is not None and parse_mode.lower() == "html":
        try:
            plain, entities = parse_html(text)
        except HtmlParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
    else:
        # Markdown modes are not checked; their text is recorded as the user's text.
        plain, entities = text, []
    if not caption and not plain.strip():
        raise bad_request("message text is empty")
    if caption and utf16_len(plain) > CAPTION_LIMIT:
        raise bad_request("message caption is too long")
    if not caption and utf16_len(plain) > TEXT_LIMIT:
        raise bad_request("message is too long")
    return plain, tuple(entities)


def markup(params: Params) -> dict[str, Any] | None:
    """The request's reply_markup, checked as Telegram checks an inline keyboard."""
    found = params.json("reply_markup", "can't parse reply keyboard markup JSON object")
    if found is None:
        return None
    if not isinstance(found, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    rows = found.get("inline_keyboard")
    if rows is None:
        return found
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
        )
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request("can't parse inline keyboard button: text is empty")
            data = button.get("callback_data")
            if data is not None:
                size = len(str(data).encode("utf-8"))
                if not 1 <= size <= CALLBACK_DATA_LIMIT:
                    raise bad_request("BUTTON_DATA_INVALID")
            elif not any(key in button for key in _BUTTON_ACTIONS):
                raise bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
    return found
