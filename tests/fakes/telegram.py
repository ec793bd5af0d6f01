"""A fake Telegram Bot API on 127.0.0.1 (aiohttp): the real aiogram client talks to it in tests.

Tests inject user messages and button presses and failures, then read what the bot sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any, Literal

from aiohttp import web

from tests.fakes.telegram_html import HtmlParseError, parse_html, utf16_len

DEFAULT_TOKEN = "123456:TEST-TOKEN"

# Limits are counted in UTF-16 code units, the unit of Telegram's entity offsets: an emoji
# outside the BMP counts 2. That is the stricter reading of "4096 characters", so text the fake
# accepts is never too long for Telegram.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes of UTF-8
MAX_REQUEST_BYTES = 50 * 1024 * 1024  # Telegram's limit on a multipart upload
FIRST_UPDATE_ID = 10_001

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: CONFLICT,
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# Parameters aiogram sends as JSON strings; recorded decoded.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "commands",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "scope",
        "media",
    }
)


# -- records --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One Bot API request. ``params`` are as sent (strings), with the JSON-valued ones
    (``reply_markup``, ``commands``, ...) decoded and uploaded files as ``bytes``."""

    method: str
    params: dict[str, Any]
    ok: bool
    at: float  # time.monotonic() when the request arrived
    status: int = 200
    description: str | None = None


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


@dataclass(frozen=True)
class CallbackAnswer:
    query_id: str
    text: str | None
    show_alert: bool
    url: str | None = None


class TelegramWaitTimeout(TimeoutError, AssertionError):
    """A ``wait_*`` helper ran out of time; the message ends with the transcript so far."""


class _ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def _bad_request(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


@dataclass
class _Failure:
    method: str  # lower case, or "*"
    status: int
    remaining: int | None
    retry_after: int | None
    description: str


@dataclass(frozen=True)
class _Update:
    update_id: int
    kind: str  # "message", "callback_query"
    body: dict[str, Any]


class _Params:
    """A request's fields (strings) and uploaded parts (bytes)."""

    def __init__(self, fields: dict[str, str], files: dict[str, bytes]) -> None:
        self.fields = fields
        self.files = files

    def text(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if value else None

    def integer(self, key: str, missing: str | None = None) -> int | None:
        value = self.fields.get(key)
        if not value:
            if missing is not None:
                raise _bad_request(missing)
            return None
        try:
            return int(value)
        except ValueError:
            raise _bad_request(f"invalid {key} specified") from None

    def number(self, key: str) -> float | None:
        value = self.fields.get(key)
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            raise _bad_request(f"invalid {key} specified") from None

    def flag(self, key: str) -> bool:
        return self.fields.get(key, "").lower() in ("true", "1")

    def json(self, key: str, error: str) -> Any:
        value = self.fields.get(key)
        if value is None:
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _bad_request(error) from None

    def upload(self, key: str) -> bytes | None:
        """The file sent for ``key``: an ``attach://name`` reference or a part named ``key``."""
        value = self.fields.get(key, "")
        if value.startswith("attach://"):
            return self.files.get(value.removeprefix("attach://"))
        return self.files.get(key)

    def recorded(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        attached: set[str] = set()
        for key, value in self.fields.items():
            name = value.removeprefix("attach://")
            if value.startswith("attach://") and name in self.files:
                out[key] = self.files[name]
                attached.add(name)
            elif key in _JSON_FIELDS:
                try:
                    out[key] = json.loads(value)
                except ValueError:
                    out[key] = value
            else:
                out[key] = value
        for key, data in self.files.items():
            if key not in attached:
                out[key] = data
        return out


_Handler = Callable[[_Params], Awaitable[Any]]


class FakeTelegram:
    """A loopback Telegram Bot API for one bot token, plus test controls.

    Point aiogram at it with ``AiohttpSession(api=TelegramAPIServer.from_base(fake.url))``.
    Start it with ``await fake.start()`` (or ``async with``) in the test's own event loop.
    """

    def __init__(
        self, token: str = DEFAULT_TOKEN, *, bot_username: str = "trader_test_bot"
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        head = token.partition(":")[0]
        self.bot_id = int(head) if head.isdigit() else 123456
        self.callback_answers: list[CallbackAnswer] = []
        self.drop_pending_updates: bool | None = None  # of the last deleteWebhook; None: never
        self._calls: list[Call] = []
        self._sent: list[SentMessage] = []
        self._edits: list[SentMessage] = []
        self._messages: dict[tuple[int, int], SentMessage] = {}
        self._photo_sizes: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._user_messages: set[tuple[int, int]] = set()
        self._last_message_id: dict[int, int] = {}
        self._updates: list[_Update] = []
        self._next_update_id = FIRST_UPDATE_ID
        self._allowed_updates: frozenset[str] | None = None
        self._queries: dict[str, bool] = {}  # callback query id -> answered
        self._failures: list[_Failure] = []
        self._commands: list[tuple[str, str]] = []
        self._files: dict[str, bytes] = {}
        self._transcript: list[str] = []
        self._poll_generation = 0
        self._polling = 0
        self._closing = False
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._methods: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler)
            for name, handler in (
                ("getMe", self._get_me),
                ("getUpdates", self._get_updates),
                ("deleteWebhook", self._delete_webhook),
                ("getWebhookInfo", self._get_webhook_info),
                ("setMyCommands", self._set_my_commands),
                ("getMyCommands", self._get_my_commands),
                ("deleteMyCommands", self._delete_my_commands),
                ("sendMessage", self._send_message),
                ("sendPhoto", self._send_photo),
                ("editMessageText", self._edit_message_text),
                ("editMessageReplyMarkup", self._edit_message_reply_markup),
                ("deleteMessage", self._delete_message),
                ("answerCallbackQuery", self._answer_callback_query),
                ("sendChatAction", self._send_chat_action),
            )
        }

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._closing = False
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A client that gives up on a long poll (aiogram cancels it on stop) ends its handler,
        # so an abandoned getUpdates neither counts as waiting nor gets a 409 later.
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=2.0, handler_cancellation=True
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving; a getUpdates still waiting is answered with ``[]`` at once."""
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The API base, e.g. ``http://127.0.0.1:54321``; methods are under ``/bot<token>/``."""
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return f"http://127.0.0.1:{self._port}"

    # -- injecting what users do -----------------------------------------------------------

    def push_message(self, chat_id: int, text: str, *, user_id: int | None = None) -> int:
        """A user writes ``text`` in the private chat ``chat_id``; returns the update_id."""
        user = chat_id if user_id is None else user_id
        message_id = self._new_message_id(chat_id)
        self._user_messages.add((chat_id, message_id))
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self._user(user),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        command = re.match(r"/\S*", text)
        if command is not None:
            length = utf16_len(command.group())
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        update_id = self._enqueue("message", message)
        self._log(f"user {self._who(user, chat_id)}: {text}")
        self._notify()
        return update_id

    def push_callback(
        self, chat_id: int, message_id: int, data: str, *, user_id: int | None = None
    ) -> str:
        """A user presses an inline button with ``data`` under message ``message_id``; returns
        the callback query id. Any message id works, also one the bot never sent."""
        user = chat_id if user_id is None else user_id
        query_id = f"cq{len(self._queries) + 1}"
        stored = self._messages.get((chat_id, message_id))
        message = (
            self._message_json(stored)
            if stored is not None
            else {
                "message_id": message_id,
                "from": self._bot_user(),
                "chat": self._chat(chat_id),
                "date": int(time.time()),
            }
        )
        query = {
            "id": query_id,
            "from": self._user(user),
            "message": message,
            "chat_instance": f"-{abs(chat_id)}{self.bot_id}",
            "data": data,
        }
        self._queries[query_id] = False
        self._enqueue("callback_query", query)
        self._log(f"user {self._who(user, chat_id)} pressed {data} on #{message_id} [{query_id}]")
        self._notify()
        return query_id

    def press(self, message: SentMessage, button: str, *, user_id: int | None = None) -> str:
        """Press the inline button labelled ``button`` on the message as it is now."""
        current = self.message(message.chat_id, message.message_id)
        data = current.button_data(button)
        return self.push_callback(current.chat_id, current.message_id, data, user_id=user_id)

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates ``offset``."""
        return [{"update_id": u.update_id, u.kind: u.body} for u in self._updates]

    # -- fault injection -------------------------------------------------------------------

    def fail(
        self,
        method: str,
        status: int = 502,
        *,
        times: int | None = None,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (None: until ``clear_failures``) with
        HTTP ``status`` and Telegram's error JSON. ``"*"`` is any method but getUpdates; a rule
        for the method itself goes first. A 429 carries ``parameters.retry_after`` (default 1).
        """
        if status < 400:
            raise ValueError(f"status must be an error status, not {status}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None)")
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after}"
            elif status in _DEFAULT_DESCRIPTIONS:
                description = _DEFAULT_DESCRIPTIONS[status]
            else:
                try:
                    description = HTTPStatus(status).phrase
                except ValueError:
                    description = f"Error {status}"
        name = method if method == "*" else method.lower()
        self._failures.append(_Failure(name, status, times, retry_after, description))

    def clear_failures(self) -> None:
        self._failures.clear()

    # -- reading what happened -------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        if method is None:
            return list(self._calls)
        return [c for c in self._calls if c.method.lower() == method.lower()]

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

    @property
    def commands(self) -> list[tuple[str, str]]:
        """(command, description) of the last setMyCommands."""
        return list(self._commands)

    @property
    def polling(self) -> int:
        """How many getUpdates requests are waiting right now."""
        return self._polling

    def transcript(self) -> str:
        """What happened, in order: user messages and presses, bot messages, edits, answers."""
        return "\n".join(self._transcript)

    # -- waiting ---------------------------------------------------------------------------

    # A deadline is the point of these helpers, so they take one (ASYNC109).
    async def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        what: str = "condition",
    ) -> None:
        """Return once ``condition()`` holds; it is re-checked on every call and injected
        update. Raises ``TelegramWaitTimeout`` (a TimeoutError and an AssertionError)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TelegramWaitTimeout(self._timeout_message(what, timeout))
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

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

    async def wait_for_answer(self, query_id: str, timeout: float = 5.0) -> CallbackAnswer:  # noqa: ASYNC109
        def answer() -> CallbackAnswer | None:
            return next((a for a in self.callback_answers if a.query_id == query_id), None)

        await self.wait_until(
            lambda: answer() is not None, timeout, what=f"an answer to callback {query_id}"
        )
        result = answer()
        assert result is not None
        return result

    # -- plumbing --------------------------------------------------------------------------

    def _notify(self) -> None:
        # Wake every waiter, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    def _timeout_message(self, what: str, timeout: float) -> str:
        tail = self._transcript[-30:]
        lines = "\n".join("  " + line for line in tail) if tail else "  (nothing happened)"
        return f"{what} not met within {timeout}s; transcript so far:\n{lines}"

    def _log(self, text: str, extra: list[str] | tuple[str, ...] = ()) -> None:
        first, *rest = text.split("\n")
        self._transcript.append(first)
        self._transcript.extend("    " + line for line in [*rest, *extra])

    @staticmethod
    def _who(user: int, chat_id: int) -> str:
        return str(user) if user == chat_id else f"{user} in {chat_id}"

    def _bot_user(self) -> dict[str, Any]:
        name = self.bot_username.removesuffix("_bot").removesuffix("bot").replace("_", " ")
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": f"{name.title().strip() or 'Test'} Bot",
            "username": self.bot_username,
        }

    @staticmethod
    def _user(user_id: int) -> dict[str, Any]:
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": "Tester",
            "username": f"user{abs(user_id)}",
            "language_code": "en",
        }

    @staticmethod
    def _chat(chat_id: int) -> dict[str, Any]:
        return {"id": chat_id, "type": "private", "first_name": "Tester"}

    def _new_message_id(self, chat_id: int) -> int:
        # In a private chat the user's and the bot's messages share one sequence.
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _enqueue(self, kind: str, body: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append(_Update(update_id, kind, body))
        return update_id

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self._bot_user(),
            "chat": self._chat(message.chat_id),
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

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        token, sep, name = request.path.removeprefix("/bot").partition("/")
        if not request.path.startswith("/bot") or not sep or not name or "/" in name:
            return _error_response(404, "Not Found")
        entry = self._methods.get(name.lower())
        method = entry[0] if entry is not None else name
        try:
            params = await _read_params(request)
        except _ApiError as exc:
            self._record(method, _Params({}, {}), at, exc)
            return _error_response(exc.status, exc.description)
        error: _ApiError | None
        if token != self.token:
            error = _ApiError(401, "Unauthorized")
        elif entry is None:
            error = _ApiError(404, "Not Found")
        else:
            error = self._take_failure(method)
        if error is not None:
            self._record(method, params, at, error)
            return _error_response(error.status, error.description, error.retry_after)
        assert entry is not None
        try:
            result = await entry[1](params)
        except _ApiError as exc:
            self._record(method, params, at, exc)
            return _error_response(exc.status, exc.description, exc.retry_after)
        except Exception as exc:  # a bug in the fake: make it loud in the test
            bug = _ApiError(500, f"Internal Server Error: fake failed: {exc!r}")
            self._record(method, params, at, bug)
            return _error_response(bug.status, bug.description)
        self._record(method, params, at, None)
        return web.json_response({"ok": True, "result": result})

    def _record(self, method: str, params: _Params, at: float, error: _ApiError | None) -> None:
        if error is None:
            self._calls.append(Call(method, params.recorded(), True, at))
        else:
            self._calls.append(
                Call(method, params.recorded(), False, at, error.status, error.description)
            )
            self._log_failure(method, params, error)
        self._notify()

    def _log_failure(self, method: str, params: _Params, error: _ApiError) -> None:
        target = params.text("chat_id")
        where = f" to {target}" if target else ""
        if params.text("message_id"):
            where += f" #{params.text('message_id')}"
        extra = [
            f"{key}: {value[:300]}"
            for key in ("text", "caption")
            if (value := params.text(key)) is not None
        ]
        self._log(f"bot {method}{where} failed: {error.status} {error.description}", extra)

    def _take_failure(self, method: str) -> _ApiError | None:
        name = method.lower()
        rule = next((f for f in self._failures if f.method == name), None)
        if rule is None and name != "getupdates":
            rule = next((f for f in self._failures if f.method == "*"), None)
        if rule is None:
            return None
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._failures.remove(rule)
        return _ApiError(rule.status, rule.description, rule.retry_after)

    # -- validation ------------------------------------------------------------------------

    @staticmethod
    def _chat_id(params: _Params) -> int:
        value = params.text("chat_id")
        if value is None:
            raise _bad_request("chat_id is empty")
        try:
            return int(value)
        except ValueError:
            raise _bad_request("chat not found") from None

    @staticmethod
    def _message_id(params: _Params) -> int:
        message_id = params.integer("message_id", missing="message identifier is not specified")
        assert message_id is not None
        return message_id

    @staticmethod
    def _parse_mode(params: _Params) -> str | None:
        mode = params.text("parse_mode")
        if mode is not None and mode.lower() not in ("html", "markdown", "markdownv2"):
            raise _bad_request("unsupported parse_mode")
        return mode

    @staticmethod
    def _render(
        text: str, parse_mode: str | None, *, caption: bool
    ) -> tuple[str, tuple[dict[str, Any], ...]]:
        """The plain text and entities of a message text or caption; Telegram's 400s."""
        if parse_mode is not None and parse_mode.lower() == "html":
            try:
                plain, entities = parse_html(text)
            except HtmlParseError as exc:
                raise _bad_request(f"can't parse entities: {exc}") from None
        else:
            # Markdown modes are not checked; their text is recorded as the user's text.
            plain, entities = text, []
        if not caption and not plain.strip():
            raise _bad_request("message text is empty")
        if caption and utf16_len(plain) > CAPTION_LIMIT:
            raise _bad_request("message caption is too long")
        if not caption and utf16_len(plain) > TEXT_LIMIT:
            raise _bad_request("message is too long")
        return plain, tuple(entities)

    @staticmethod
    def _markup(params: _Params) -> dict[str, Any] | None:
        markup = params.json("reply_markup", "can't parse reply keyboard markup JSON object")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return markup
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise _bad_request("can't parse inline keyboard button: text is empty")
                data = button.get("callback_data")
                if data is not None:
                    size = len(str(data).encode("utf-8"))
                    if not 1 <= size <= CALLBACK_DATA_LIMIT:
                        raise _bad_request("BUTTON_DATA_INVALID")
                elif not any(key in button for key in _BUTTON_ACTIONS):
                    raise _bad_request(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
        return markup

    def _lookup_for_edit(self, chat_id: int, message_id: int) -> SentMessage:
        current = self._messages.get((chat_id, message_id))
        if current is None:
            if (chat_id, message_id) in self._user_messages:
                raise _bad_request("message can't be edited")
            raise _bad_request("message to edit not found")
        return current

    # -- methods ---------------------------------------------------------------------------

    async def _get_me(self, params: _Params) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: _Params) -> list[dict[str, Any]]:
        offset = params.integer("offset") or 0
        limit = min(max(params.integer("limit") or 100, 1), 100)
        timeout = max(params.number("timeout") or 0.0, 0.0)
        allowed = params.json("allowed_updates", "can't parse allowed updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(str(kind) for kind in allowed) or None
        # Confirm: updates below the offset are forgotten for good; a negative offset keeps
        # only the last -offset updates.
        if offset > 0:
            self._updates = [u for u in self._updates if u.update_id >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        # A newer getUpdates ends a waiting one with 409, as Telegram does.
        self._poll_generation += 1
        generation = self._poll_generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._polling += 1
        self._notify()
        try:
            while True:
                if generation != self._poll_generation:
                    raise _ApiError(409, CONFLICT)
                allowed_kinds = self._allowed_updates
                ready = [
                    u for u in self._updates if allowed_kinds is None or u.kind in allowed_kinds
                ][:limit]
                if ready:
                    return [{"update_id": u.update_id, u.kind: u.body} for u in ready]
                remaining = deadline - loop.time()
                if self._closing or remaining <= 0:
                    return []
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            self._polling -= 1
            self._notify()

    async def _delete_webhook(self, params: _Params) -> bool:
        drop = params.flag("drop_pending_updates")
        self.drop_pending_updates = drop
        if drop:
            self._updates.clear()
        self._log(f"bot deleted the webhook (drop pending updates: {'yes' if drop else 'no'})")
        return True

    async def _get_webhook_info(self, params: _Params) -> dict[str, Any]:
        return {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _set_my_commands(self, params: _Params) -> bool:
        commands = params.json("commands", "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        parsed: list[tuple[str, str]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise _bad_request("can't parse BotCommand")
            command, description = str(item.get("command", "")), str(item.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            parsed.append((command, description))
        self._commands = parsed
        self._log("bot set commands:", [f"/{c} — {d}" for c, d in parsed] or ["(none)"])
        return True

    async def _get_my_commands(self, params: _Params) -> list[dict[str, str]]:
        return [{"command": c, "description": d} for c, d in self._commands]

    async def _delete_my_commands(self, params: _Params) -> bool:
        self._commands = []
        self._log("bot deleted its commands")
        return True

    async def _send_chat_action(self, params: _Params) -> bool:
        self._chat_id(params)
        return True

    async def _send_message(self, params: _Params) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        text = params.text("text") or ""
        parse_mode = self._parse_mode(params)
        plain, entities = self._render(text, parse_mode, caption=False)
        markup = self._markup(params)
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
        )
        self._messages[(chat_id, message.message_id)] = message
        self._sent.append(message)
        self._log(f"bot → {chat_id} #{message.message_id}: {plain}", _keyboard_lines(markup))
        return self._message_json(message)

    async def _send_photo(self, params: _Params) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        reference = params.text("photo")
        data = params.upload("photo")
        if data is None:
            if reference is None:
                raise _bad_request("there is no photo in the request")
            if reference not in self._files:
                raise _bad_request("wrong file identifier/HTTP URL specified")
            data = self._files[reference]
        if not data.startswith(PNG_SIGNATURE) or len(data) < 24:
            raise _bad_request("IMAGE_PROCESS_FAILED")  # this fake knows PNG only
        caption = params.text("caption")
        parse_mode = self._parse_mode(params)
        plain: str = ""
        entities: tuple[dict[str, Any], ...] = ()
        if caption is not None:
            plain, entities = self._render(caption, parse_mode, caption=True)
        markup = self._markup(params)
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

    async def _edit_message_text(self, params: _Params) -> dict[str, Any]:
        if params.text("inline_message_id") is not None:
            raise _bad_request("message to edit not found")  # inline messages: not faked
        chat_id = self._chat_id(params)
        message_id = self._message_id(params)
        text = params.text("text") or ""
        parse_mode = self._parse_mode(params)
        plain, entities = self._render(text, parse_mode, caption=False)
        markup = self._markup(params)
        current = self._lookup_for_edit(chat_id, message_id)
        if current.kind != "text":
            raise _bad_request("there is no text in the message to edit")
        if (
            current.plain == plain
            and current.entities == entities
            and _inline(current.reply_markup) == _inline(markup)
        ):
            raise _bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
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

    async def _edit_message_reply_markup(self, params: _Params) -> dict[str, Any]:
        if params.text("inline_message_id") is not None:
            raise _bad_request("message to edit not found")
        chat_id = self._chat_id(params)
        message_id = self._message_id(params)
        markup = self._markup(params)
        current = self._lookup_for_edit(chat_id, message_id)
        if _inline(current.reply_markup) == _inline(markup):
            raise _bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        new = replace(current, reply_markup=markup, edits=current.edits + 1)
        self._messages[(chat_id, message_id)] = new
        self._edits.append(new)
        lines = _keyboard_lines(markup)
        self._log(
            f"bot edited {chat_id} #{message_id} keyboard:{'' if lines else ' (removed)'}", lines
        )
        return self._message_json(new)

    async def _delete_message(self, params: _Params) -> bool:
        chat_id = self._chat_id(params)
        message_id = self._message_id(params)
        if self._messages.pop((chat_id, message_id), None) is None:
            raise _bad_request("message to delete not found")
        self._log(f"bot deleted {chat_id} #{message_id}")
        return True

    async def _answer_callback_query(self, params: _Params) -> bool:
        query_id = params.text("callback_query_id") or ""
        if self._queries.get(query_id, True):  # unknown, or answered already
            raise _bad_request(QUERY_INVALID.removeprefix("Bad Request: "))
        self._queries[query_id] = True
        answer = CallbackAnswer(
            query_id, params.text("text"), params.flag("show_alert"), params.text("url")
        )
        self.callback_answers.append(answer)
        shown = "(no text)" if answer.text is None else answer.text
        alert = " (alert)" if answer.show_alert else ""
        self._log(f"bot answered [{query_id}]{alert}: {shown}")
        return True


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


def _error_response(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


async def _read_params(request: web.Request) -> _Params:
    """The request's parameters from the query string and a urlencoded, multipart or JSON body."""
    fields: dict[str, str] = dict(request.query)
    files: dict[str, bytes] = {}
    if not request.can_read_body:
        return _Params(fields, files)
    try:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise _bad_request("parameters must be a JSON object")
            for key, value in body.items():
                fields[key] = value if isinstance(value, str) else json.dumps(value)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                elif isinstance(value, (bytes, bytearray)):
                    files[key] = bytes(value)
                else:
                    fields[key] = value
    except web.HTTPRequestEntityTooLarge:
        raise _ApiError(413, "Request Entity Too Large") from None
    except ValueError:
        raise _bad_request("can't parse request body") from None
    return _Params(fields, files)
