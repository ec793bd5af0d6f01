"""What users do, as the fake Telegram offers it to the bot: the update queue that tests fill
with messages and button presses, getUpdates' long poll, the webhook calls, callback answers."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.telegram.common import ApiError, Params, bad_request, chat_json, user_json
from tests.fakes.telegram.html_mode import utf16_len
from tests.fakes.telegram.messages import SentMessage

FIRST_UPDATE_ID = 10_001

QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)


@dataclass(frozen=True)
class CallbackAnswer:
    query_id: str
    text: str | None
    show_alert: bool
    url: str | None = None


@dataclass(frozen=True)
class _Update:
    update_id: int
    kind: str  # "message", "callback_query"
    body: dict[str, Any]


class Updates:
    """Mixin of ``FakeTelegram``: injecting what users do, and offering it to the bot."""

    # Provided by FakeTelegram.
    bot_id: int
    _closing: bool
    _changed: asyncio.Event
    _messages: dict[tuple[int, int], SentMessage]
    _notify: Callable[[], None]
    _log: Callable[..., None]
    _bot_user: Callable[[], dict[str, Any]]
    _new_user_message_id: Callable[[int], int]
    _message_json: Callable[[SentMessage], dict[str, Any]]
    message: Callable[[int, int], SentMessage]
    wait_until: Callable[..., Awaitable[None]]

    def _init_updates(self) -> None:
        self.callback_answers: list[CallbackAnswer] = []
        self.drop_pending_updates: bool | None = None  # of the last deleteWebhook; None: never
        self._updates: list[_Update] = []
        self._next_update_id = FIRST_UPDATE_ID
        self._allowed_updates: frozenset[str] | None = None
        self._queries: dict[str, bool] = {}  # callback query id -> answered
        self._poll_generation = 0
        self._polling = 0

    # -- injecting what users do -----------------------------------------------------------

    def push_message(self, chat_id: int, text: str, *, user_id: int | None = None) -> int:
        """A user writes ``text`` in the private chat ``chat_id``; returns the update_id."""
        user = chat_id if user_id is None else user_id
        message_id = self._new_user_message_id(chat_id)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": user_json(user),
            "chat": chat_json(chat_id),
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
                "chat": chat_json(chat_id),
                "date": int(time.time()),
            }
        )
        query = {
            "id": query_id,
            "from": user_json(user),
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

    @property
    def polling(self) -> int:
        """How many getUpdates requests are waiting right now."""
        return self._polling

    async def wait_for_answer(self, query_id: str, timeout: float = 5.0) -> CallbackAnswer:  # noqa: ASYNC109
        def answer() -> CallbackAnswer | None:
            return next((a for a in self.callback_answers if a.query_id == query_id), None)

        await self.wait_until(
            lambda: answer() is not None, timeout, what=f"an answer to callback {query_id}"
        )
        result = answer()
        assert result is not None
        return result

    @staticmethod
    def _who(user: int, chat_id: int) -> str:
        return str(user) if user == chat_id else f"{user} in {chat_id}"

    def _enqueue(self, kind: str, body: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append(_Update(update_id, kind, body))
        return update_id

    # -- methods ---------------------------------------------------------------------------

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
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
                    raise ApiError(409, CONFLICT)
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

    async def _delete_webhook(self, params: Params) -> bool:
        drop = params.flag("drop_pending_updates")
        self.drop_pending_updates = drop
        if drop:
            self._updates.clear()
        self._log(f"bot deleted the webhook (drop pending updates: {'yes' if drop else 'no'})")
        return True

    async def _get_webhook_info(self, params: Params) -> dict[str, Any]:
        return {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _answer_callback_query(self, params: Params) -> bool:
        query_id = params.text("callback_query_id") or ""
        if self._queries.get(query_id, True):  # unknown, or answered already
            raise bad_request(QUERY_INVALID.removeprefix("Bad Request: "))
        self._queries[query_id] = True
        answer = CallbackAnswer(
            query_id, params.text("text"), params.flag("show_alert"), params.text("url")
        )
        self.callback_answers.append(answer)
        shown = "(no text)" if answer.text is None else answer.text
        alert = " (alert)" if answer.show_alert else ""
        self._log(f"bot answered [{query_id}]{alert}: {shown}")
        return True
