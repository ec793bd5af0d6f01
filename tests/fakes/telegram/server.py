"""``FakeTelegram``: the loopback Telegram Bot API server (aiohttp) that the real aiogram client
talks to, routing each method to its part, recording every call, and the transcript and waits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.fakes.telegram.common import ApiError, Call, Params, error_response, read_params
from tests.fakes.telegram.faults import Faults
from tests.fakes.telegram.messages import Messages
from tests.fakes.telegram.profile import Profile
from tests.fakes.telegram.updates import Updates

DEFAULT_TOKEN = "123456:TEST-TOKEN"
MAX_REQUEST_BYTES = 50 * 1024 * 1024  # Telegram's limit on a multipart upload

_Handler = Callable[[Params], Awaitable[Any]]  # a Bot API method: its result, or ApiError


class TelegramWaitTimeout(TimeoutError, AssertionError):
    """A ``wait_*`` helper ran out of time; the message ends with the transcript so far."""


class FakeTelegram(Updates, Messages, Profile, Faults):
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
        self._calls: list[Call] = []
        self._transcript: list[str] = []
        self._closing = False
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._init_updates()
        self._init_messages()
        self._init_profile()
        self._init_faults()
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

    # -- reading what happened -------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        if method is None:
            return list(self._calls)
        return [c for c in self._calls if c.method.lower() == method.lower()]

    def transcript(self) -> str:
        """What happened, in order: user messages and presses, bot messages, edits, answers."""
        return "\n".join(self._transcript)

    # A deadline is the point of this helper, so it takes one (ASYNC109).
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

    # -- routing ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        token, sep, name = request.path.removeprefix("/bot").partition("/")
        if not request.path.startswith("/bot") or not sep or not name or "/" in name:
            return error_response(404, "Not Found")
        entry = self._methods.get(name.lower())
        method = entry[0] if entry is not None else name
        try:
            params = await read_params(request)
        except ApiError as exc:
            self._record(method, Params({}, {}), at, exc)
            return error_response(exc.status, exc.description)
        error: ApiError | None
        if token != self.token:
            error = ApiError(401, "Unauthorized")
        elif entry is None:
            error = ApiError(404, "Not Found")
        else:
            error = self._take_failure(method)
        if error is not None:
            self._record(method, params, at, error)
            return error_response(error.status, error.description, error.retry_after)
        assert entry is not None
        try:
            result = await entry[1](params)
        except ApiError as exc:
            self._record(method, params, at, exc)
            return error_response(exc.status, exc.description, exc.retry_after)
        except Exception as exc:  # a bug in the fake: make it loud in the test
            bug = ApiError(500, f"Internal Server Error: fake failed: {exc!r}")
            self._record(method, params, at, bug)
            return error_response(bug.status, bug.description)
        self._record(method, params, at, None)
        return web.json_response({"ok": True, "result": result})

    def _record(self, method: str, params: Params, at: float, error: ApiError | None) -> None:
        if error is None:
            self._calls.append(Call(method, params.recorded(), True, at))
        else:
            self._calls.append(
                Call(method, params.recorded(), False, at, error.status, error.description)
            )
            self._log_failure(method, params, error)
        self._notify()

    def _log_failure(self, method: str, params: Params, error: ApiError) -> None:
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
