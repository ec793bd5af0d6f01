"""The fake's private stream (``/v5/private``): auth, ping, subscribe to ``order``,
``execution``, ``position`` and ``wallet``, and a push for every change on the account.

Like Bybit, private topics have no snapshot: a client learns only of changes after it has
subscribed, and a change pushed while it is disconnected (or while pushes are paused or dropped
here) is lost to it for good; only REST can recover it. ``drop_private_pushes`` loses pushes on a
connection that stays up and logged in, answering pings: nothing tells the client.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from tests.fakes.bybit.common import (
    CATEGORY,
    PRIVATE_PATH,
    ReceivedWsMessage,
    StreamConnection,
)
from tests.fakes.bybit.signing import FakeApiKey, check_ws_auth

Push = tuple[str, dict[str, Any]]
PRIVATE_TOPICS = frozenset(
    {"order", "execution", "position", "wallet"}
    | {f"{base}.{CATEGORY}" for base in ("order", "execution", "position")}
)


class PrivateStream:
    """Mixin of ``FakeBybit``: the private stream and its test controls."""

    # Provided by FakeBybit.
    api_keys: dict[str, FakeApiKey]
    reply_delay: float
    ws_messages: list[ReceivedWsMessage]
    _notify: Callable[[], None]
    _server_ms: Callable[[], int]
    wait_until: Callable[..., Awaitable[None]]

    def _init_private_stream(self) -> None:
        self.private_connections = 0  # how many private connections were ever accepted
        self.refuse_private_streams = False  # answer the WebSocket upgrade with HTTP 503
        self.private_pushes: list[dict[str, Any]] = []  # every push written to some socket
        self.private_pushes_dropped = 0  # pushes lost to pause_/drop_private_pushes
        self._private: set[StreamConnection] = set()
        self._private_paused = False
        self._drops_left: int | None = 0  # None: drop every push until told to stop

    def _private_stream_routes(self) -> list[web.RouteDef]:
        return [web.get(PRIVATE_PATH, self._private_stream)]

    # -- test controls ---------------------------------------------------------------------

    def pause_private_pushes(self) -> None:
        """Drop every private push from now on (the account still changes): what a client
        misses while its stream is down, without closing its socket."""
        self._private_paused = True

    def resume_private_pushes(self) -> None:
        self._private_paused = False

    def drop_private_pushes(self, count: int | None = None) -> None:
        """Silently discard the next ``count`` private pushes (each a topic's message of one
        change), or every one until ``stop_dropping_private_pushes``; the connections stay up
        and logged in. Like ``pause_private_pushes``, dropped pushes are never sent later."""
        self._drops_left = count

    def stop_dropping_private_pushes(self) -> None:
        self._drops_left = 0

    def _drop_this_push(self) -> bool:
        if self._private_paused or self._drops_left is None:
            return True
        if self._drops_left > 0:
            self._drops_left -= 1
            return True
        return False

    async def drop_private_streams(self, *, abrupt: bool = False) -> None:
        """Close every private connection: with a close frame (``GOING_AWAY``), or
        ``abrupt``ly, like a network failure."""
        connections, self._private = list(self._private), set()
        self._notify()
        for conn in connections:
            if abrupt:
                conn.abort()
            else:
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake: dropped")

    def private_subscriptions(self) -> set[str]:
        """Topics some open, authenticated private connection is subscribed to."""
        return {topic for conn in self._private if conn.key is not None for topic in conn.topics}

    def authenticated_private_connections(self) -> int:
        return sum(1 for conn in self._private if conn.key is not None)

    async def wait_for_private_subscription(self, topic: str, timeout: float = 2.0) -> None:  # noqa: ASYNC109
        try:
            await self.wait_until(lambda: topic in self.private_subscriptions(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no private subscription to {topic} within {timeout}s; "
                f"subscribed: {sorted(self.private_subscriptions())}"
            ) from None

    # -- pushes ----------------------------------------------------------------------------

    async def _publish(self, pushes: Iterable[Push]) -> None:
        """Send each (topic, data) to the connections subscribed to it, in order."""
        for topic, data in pushes:
            if self._drop_this_push():
                self.private_pushes_dropped += 1
                continue
            for conn in list(self._private):
                names = [t for t in (topic, f"{topic}.{CATEGORY}") if t in conn.topics]
                for name in names:
                    message = {
                        "id": f"{uuid.uuid4().hex}",
                        "topic": name,
                        "creationTime": self._server_ms(),
                        "data": [data],
                    }
                    if await conn.send(message):
                        self.private_pushes.append(message)
        self._notify()

    # -- the stream ------------------------------------------------------------------------

    async def _private_stream(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_private_streams:
            return web.Response(status=503, text="fake: private stream unavailable")
        ws = web.WebSocketResponse(timeout=1.0)
        await ws.prepare(request)
        conn = StreamConnection(ws=ws, request=request, conn_id=str(uuid.uuid4()))
        self._private.add(conn)
        self.private_connections += 1
        self._notify()
        try:
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                try:
                    message = json.loads(frame.data)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                self.ws_messages.append(ReceivedWsMessage(request.path, conn.conn_id, message))
                self._notify()
                await self._answer_private(conn, message)
        finally:
            self._private.discard(conn)
            self._notify()
        return ws

    async def _answer_private(self, conn: StreamConnection, message: Mapping[str, Any]) -> None:
        await asyncio.sleep(self.reply_delay)  # a network round trip; see DEFAULT_REPLY_DELAY
        op = message.get("op")
        args = list(message.get("args") or [])
        reply: dict[str, Any] = {"success": True, "ret_msg": "", "op": op, "conn_id": conn.conn_id}
        if "req_id" in message:
            reply["req_id"] = message["req_id"]
        if op == "ping":
            pong = {"op": "pong", "args": [str(self._server_ms())], "conn_id": conn.conn_id}
            await conn.send({"req_id": message.get("req_id", ""), **pong})
        elif op == "auth":
            try:
                conn.key = check_ws_auth(self.api_keys, args, self._server_ms())
            except ValueError as refused:
                await conn.send({**reply, "success": False, "ret_msg": str(refused)})
            else:
                await conn.send(reply)
            self._notify()
        elif op == "subscribe":
            topics = [str(a) for a in args]
            unknown = [t for t in topics if t not in PRIVATE_TOPICS]
            if conn.key is None:
                await conn.send({**reply, "success": False, "ret_msg": "Request not authorized"})
            elif unknown:
                await conn.send({**reply, "success": False, "ret_msg": f"Invalid topic :{unknown}"})
            else:
                conn.topics.update(topics)
                await conn.send(reply)
                self._notify()
        elif op == "unsubscribe":
            conn.topics.difference_update(str(a) for a in args)
            await conn.send(reply)
            self._notify()
        else:
            await conn.send({**reply, "success": False, "ret_msg": f"error:unknown op {op}"})
