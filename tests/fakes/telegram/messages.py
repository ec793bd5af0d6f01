"""The bot's messages in the fake Telegram: sendMessage, sendPhoto, the edits and deletes,
recorded as ``SentMessage`` (as sent, and as each is now) for tests to read and wait for."""

from __future__ import annotations

import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from tests.fakes.telegram import validation
from tests.fakes.telegram.common import Params, bad_request, chat_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent, as sent or (from ``FakeTelegram.message``) as it is now."""

    chat_id: int
    message_id: int
    kind: Literal["text", "photo"]
    text: str | None  # raw, as sent; None for a photo
    plain: str  # what the user sees: the text, or the photo's caption, tags stripped
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    photo: bytes | None
    caption: str | None  # raw, as sent
    entities: tuple[dict[str, Any], ...] = ()
    date: int = 0
    edits: int = 0
    silent: bool = False  # sent with disable_notification: no sound on the phone

    @property
    def buttons(self) -> list[list[str]]:
        """The inline keyboard's button texts, row by row."""
        return [[str(b.get("text")) for b in row] for row in self._inline_rows()]

    def button_data(self, text: str) -> str:
        """The ``callback_data`` of the inline button labelled ``text``."""
        for row in self._inline_rows():
            for button in row:
                if button.get("text") == text and "callback_data" in button:
                    return str(button["callback_data"])
        raise LookupError(f"no callback button {text!r} on #{self.message_id}: {self.buttons}")

    def _inline_rows(self) -> list[list[dict[str, Any]]]:
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [list(row) for row in rows]


class Messages:
    """Mixin of ``FakeTelegram``: the bot's messages, and reading and waiting for them."""

    # Provided by FakeTelegram.
    _log: Callable[..., None]
    _bot_user: Callable[[], dict[str, Any]]
    wait_until: Callable[..., Awaitable[None]]

    def _init_messages(self) -> None:
        self._sent: list[SentMessage] = []
        self._edits: list[SentMessage] = []
        self._messages: dict[tuple[int, int], SentMessage] = {}
        self._photo_sizes: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._user_messages: set[tuple[int, int]] = set()
        self._last_message_id: dict[int, int] = {}
        self._files: dict[str, bytes] = {}

    # -- reading and waiting ---------------------------------------------------------------

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        """Messages sent successfully (sendMessage, sendPhoto), in order, as sent."""
        return [m for m in self._sent if chat_id is None or m.chat_id == chat_id]

    def edits(self, chat_id: int | None = None) -> list[SentMessage]:
        """Each successful edit, in order, as the message was right after it."""
        return [m for m in self._edits if chat_id is None or m.chat_id == chat_id]

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        """The bot's message as it is now, after edits."""
        try:
            return self._messages[(chat_id, message_id)]
        except KeyError:
            known = sorted(mid for chat, mid in self._messages if chat == chat_id)
            raise LookupError(
                f"no bot message #{message_id} in chat {chat_id}; it has {known}"
            ) from None

    # A deadline is the point of this helper, so it takes one (ASYNC109).
    async def wait_for_message(
        self,
        chat_id: int,
        contains: str,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        after: int = 0,
    ) -> SentMessage:
        """The first bot message in ``chat_id`` with id above ``after`` whose text or caption,
        as the user sees it now (after edits), contains ``contains``."""
        found: list[SentMessage] = []

        def check() -> bool:
            mine = sorted(
                (m for (chat, mid), m in self._messages.items() if chat == chat_id and mid > after),
                key=lambda m: m.message_id,
            )
            found[:] = [m for m in mine if contains in m.plain][:1]
            return bool(found)

        await self.wait_until(
            check, timeout, what=f"a bot message to {chat_id} containing {contains!r}"
        )
        return found[0]

    # -- plumbing --------------------------------------------------------------------------

    def _new_message_id(self, chat_id: int) -> int:
        # In a private chat the user's and the bot's messages share one sequence.
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _new_user_message_id(self, chat_id: int) -> int:
        """The id of a message a user writes: one the bot cannot edit."""
        message_id = self._new_message_id(chat_id)
        self._user_messages.add((chat_id, message_id))
        return message_id

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self._bot_user(),
            "chat": chat_json(message.chat_id),
            "date": message.date,
        }
        if message.edits:
            out["edit_date"] = int(time.time())
        entities = [dict(e) for e in message.entities]
        if message.kind == "text":
            out["text"] = message.plain
            if entities:
                out["entities"] = entities
        else:
            out["photo"] = self._photo_sizes[(message.chat_id, message.message_id)]
            if message.plain:
                out["caption"] = message.plain
                if entities:
                    out["caption_entities"] = entities
        inline = _inline(message.reply_markup)
        if inline is not None:
            out["reply_markup"] = inline  # Telegram echoes inline keyboards only
        return out

    def _lookup_for_edit(self, chat_id: int, message_id: int) -> SentMessage:
        current = self._messages.get((chat_id, message_id))
        if current is None:
            if (chat_id, message_id) in self._user_messages:
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return current

    # -- methods ---------------------------------------------------------------------------

    async def _send_chat_action(self, params: Params) -> bool:
        validation.chat_id(params)
        return True

    async def _send_message(self, params: Params) -> dict[str, Any]:
        chat_id = validation.chat_id(params)
        text = params.text("text") or ""
        parse_mode = validation.parse_mode(params)
        plain, entities = validation.render(text, parse_mode, caption=False)
        markup = validation.markup(params)
        message = SentMessage(
            chat_id=chat_id,
            message_id=self._new_message_id(chat_id),
            kind="text",
            text=text,
            plain=plain,
            parse_mode=parse_mode,
            reply_markup=markup,
            photo=None,
            caption=None,
            entities=entities,
            date=int(time.time()),
            silent=params.flag("disable_notification"),
        )
        self._messages[(chat_id, message.message_id)] = message
        self._sent.append(message)
        self._log(f"bot → {chat_id} #{message.message_id}: {plain}", _keyboard_lines(markup))
        return self._message_json(message)

    async def _send_photo(self, params: Params) -> dict[str, Any]:
        chat_id = validation.chat_id(params)
        reference = params.text("photo")
        data = params.upload("photo")
        if data is None:
            if reference is None:
                raise bad_request("there is no photo in the request")
            if reference not in self._files:
                raise bad_request("wrong file identifier/HTTP URL specified")
            data = self._files[reference]
        if not data.startswith(PNG_SIGNATURE) or len(data) < 24:
            raise bad_request("IMAGE_PROCESS_FAILED")  # this fake knows PNG only
        caption = params.text("caption")
        parse_mode = validation.parse_mode(params)
        plain: str = ""
        entities: tuple[dict[str, Any], ...] = ()
        if caption is not None:
            plain, entities = validation.render(caption, parse_mode, caption=True)
        markup = validation.markup(params)
        message_id = self._new_message_id(chat_id)
        width, height = struct.unpack(">II", data[16:24])
        self._photo_sizes[(chat_id, message_id)] = self._store_photo(data, width, height)
        message = SentMessage(
            chat_id=chat_id,
            message_id=message_id,
            kind="photo",
            text=None,
            plain=plain,
            parse_mode=parse_mode,
            reply_markup=markup,
            photo=data,
            caption=caption,
            entities=entities,
            date=int(time.time()),
            silent=params.flag("disable_notification"),
        )
        self._messages[(chat_id, message_id)] = message
        self._sent.append(message)
        header = f"bot → {chat_id} #{message_id} [photo PNG {len(data):,} bytes]"
        self._log(f"{header} {plain}".rstrip(), _keyboard_lines(markup))
        return self._message_json(message)

    def _store_photo(self, data: bytes, width: int, height: int) -> list[dict[str, Any]]:
        """PhotoSizes as Telegram lists them: thumbnails first, largest last (up to 1280)."""
        sizes: list[dict[str, Any]] = []
        longest = max(width, height, 1)
        for side in (90, 320, 800, 1280):
            scale = min(side / longest, 1.0)
            file_id = f"fake-photo-{len(self._files) + 1}"
            self._files[file_id] = data  # a later sendPhoto may pass this file_id
            size: dict[str, Any] = {"file_id": file_id, "file_unique_id": f"u{file_id}"}
            size |= {"width": max(round(width * scale), 1), "height": max(round(height * scale), 1)}
            sizes.append(size)
            if scale == 1.0:
                size["file_size"] = len(data)
                break
        return sizes

    async def _edit_message_text(self, params: Params) -> dict[str, Any]:
        if params.text("inline_message_id") is not None:
            raise bad_request("message to edit not found")  # inline messages: not faked
        chat_id = validation.chat_id(params)
        message_id = validation.message_id(params)
        text = params.text("text") or ""
        parse_mode = validation.parse_mode(params)
        plain, entities = validation.render(text, parse_mode, caption=False)
        markup = validation.markup(params)
        current = self._lookup_for_edit(chat_id, message_id)
        if current.kind != "text":
            raise bad_request("there is no text in the message to edit")
        if (
            current.plain == plain
            and current.entities == entities
            and _inline(current.reply_markup) == _inline(markup)
        ):
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        new = replace(
            current,
            text=text,
            plain=plain,
            parse_mode=parse_mode,
            entities=entities,
            reply_markup=markup,
            edits=current.edits + 1,
        )
        self._messages[(chat_id, message_id)] = new
        self._edits.append(new)
        self._log(f"bot edited {chat_id} #{message_id}: {plain}", _keyboard_lines(markup))
        return self._message_json(new)

    async def _edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
        if params.text("inline_message_id") is not None:
            raise bad_request("message to edit not found")
        chat_id = validation.chat_id(params)
        message_id = validation.message_id(params)
        markup = validation.markup(params)
        current = self._lookup_for_edit(chat_id, message_id)
        if _inline(current.reply_markup) == _inline(markup):
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        new = replace(current, reply_markup=markup, edits=current.edits + 1)
        self._messages[(chat_id, message_id)] = new
        self._edits.append(new)
        lines = _keyboard_lines(markup)
        self._log(
            f"bot edited {chat_id} #{message_id} keyboard:{'' if lines else ' (removed)'}", lines
        )
        return self._message_json(new)

    async def _delete_message(self, params: Params) -> bool:
        chat_id = validation.chat_id(params)
        message_id = validation.message_id(params)
        if self._messages.pop((chat_id, message_id), None) is None:
            raise bad_request("message to delete not found")
        self._log(f"bot deleted {chat_id} #{message_id}")
        return True


def _inline(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """The inline keyboard of a reply_markup: the only kind a message keeps."""
    if markup is None or not markup.get("inline_keyboard"):
        return None
    return {"inline_keyboard": markup["inline_keyboard"]}


def _keyboard_lines(markup: dict[str, Any] | None) -> list[str]:
    inline = _inline(markup)
    if inline is None:
        return []
    lines = []
    for row in inline["inline_keyboard"]:
        cells = []
        for button in row:
            action = button.get("callback_data") or button.get("url")
            cells.append(f"[{button.get('text')}{f' → {action}' if action else ''}]")
        lines.append(" ".join(cells))
    return lines
