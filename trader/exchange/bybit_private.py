"""``PrivateStream``: Bybit's private WebSocket, logged in and subscribed to ``order``,
``execution`` and ``position``; its messages are parsed in ``bybit_messages``.

Bybit's private topics have no snapshot: what changes while the stream is down is lost to it,
so the adapter covers a gap with REST and reconciles after every reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from trader.exchange.base import CONNECTED, RECONNECTING, StreamHealth
from trader.exchange.bybit_stream import CLOSE_TIMEOUT, BybitSocket

log = logging.getLogger(__name__)

TOPICS = ("execution", "order", "position")
MAX_RECONNECT_DELAY = 30.0  # seconds between attempts while the stream cannot connect
AUTH_TIMEOUT = 5.0  # seconds a new connection has to be logged in


# --- the stream ----------------------------------------------------------------------------

Push = tuple[str, list[Mapping[str, Any]]]  # (topic, data rows)


class PrivateStream:
    """The private WebSocket, logged in and subscribed to order, execution and position.

    Pushes reach ``on_push`` on the event loop. A watchdog reconnects a dropped or refused
    stream (1 s doubling to 30 s) and calls ``on_restored`` once a new connection is logged
    in, so that what was missed can be reconciled. ``healthy`` says whether pushes can be
    relied on; while it is False the adapter polls.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        *,
        on_push: Callable[[str, list[Mapping[str, Any]]], None],
        on_restored: Callable[[], None],
        check_interval: float = 1.0,
        server_offset_ms: Callable[[], int] = lambda: 0,
    ) -> None:
        """``server_offset_ms``: Bybit's clock minus ours, as last measured; each login's
        expiry allows for it."""
        self._url = url
        self._key = api_key
        self._secret = api_secret
        self._on_push = on_push
        self._on_restored = on_restored
        self._check_interval = check_interval
        self._server_offset_ms = server_offset_ms
        self._loop: asyncio.AbstractEventLoop | None = None
        self._socket: BybitSocket | None = None
        self._logged_in = False
        self._ever_logged_in = False
        self._ready: asyncio.Event = asyncio.Event()  # logged in and subscribed, or refused
        self._refusal = ""
        self._subscribed = 0
        self._watchdog: asyncio.Task[None] | None = None
        self._stopped = False  # read by pybit's threads too
        self._delay = check_interval
        self._next_try = 0.0
        # For health checks: up when last looked at, since when (monotonic), and returns.
        self._up = False
        self._changed_at = time.monotonic()
        self._reconnects = 0

    @property
    def healthy(self) -> bool:
        socket = self._socket
        return socket is not None and self._logged_in and socket.is_live()

    def health(self) -> StreamHealth:
        """The stream as a health check sees it: connected (logged in and subscribed), or
        being reconnected."""
        now, up = time.monotonic(), self.healthy
        since = self._changed_at if up == self._up else now
        state = CONNECTED if up else RECONNECTING
        return StreamHealth(state, max(now - since, 0.0), self._reconnects)

    def _mark(self, up: bool) -> None:
        if up != self._up:
            self._up, self._changed_at = up, time.monotonic()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        await self._reconnect("starting")
        self._watchdog = asyncio.create_task(self._watch(), name="bybit-private-watchdog")

    async def stop(self) -> None:
        self._stopped = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        await self._close()

    async def drop(self) -> None:
        """Close the current connection; the watchdog opens a new one (for tests and for a
        stream that looks alive but is not)."""
        await self._close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval)
            if self.healthy or time.monotonic() < self._next_try:
                continue
            try:
                await self._reconnect("disconnected")
            except Exception:
                log.exception("private stream: reconnect failed")

    async def _reconnect(self, reason: str) -> None:
        if self._socket is not None:
            log.warning("private stream: %s; reconnecting", reason)
        await self._close()
        self._ready, self._refusal, self._subscribed = asyncio.Event(), "", 0
        try:
            self._socket = await asyncio.to_thread(self._open)
        except Exception as exc:
            self._back_off(f"cannot connect to {self._url}: {exc!r:.200}")
            return
        try:
            await asyncio.wait_for(self._ready.wait(), AUTH_TIMEOUT)
        except TimeoutError:
            self._back_off("no answer to the login and subscriptions")
            await self._close()
            return
        if self._refusal:
            self._back_off(f"Bybit refused {self._refusal}")
            await self._close()
            return
        self._logged_in = True
        self._mark(True)
        log.info("private stream: connected to %s", self._url)
        self._delay = self._check_interval
        restored, self._ever_logged_in = self._ever_logged_in, True
        if restored:
            self._reconnects += 1
            self._on_restored()

    def _back_off(self, why: str) -> None:
        log.warning(
            "private stream: %s; REST polling covers fills and closes; next try in %.0f s",
            why,
            self._delay,
        )
        self._next_try = time.monotonic() + self._delay
        self._delay = min(2 * self._delay, MAX_RECONNECT_DELAY)

    def _open(self) -> BybitSocket | None:
        """Connect, log in and subscribe. Blocking: runs in a worker thread."""
        socket = BybitSocket(
            self._url,
            "private",
            api_key=self._key,
            api_secret=self._secret,
            on_auth=lambda ok, why: self._hop(self._answered, "the login", ok, why),
            on_subscribed=lambda ok, why: self._hop(self._answered, "a subscription", ok, why),
            server_offset_ms=self._server_offset_ms(),
        )
        if self._stopped:
            socket.close()
            return None
        for topic in TOPICS:
            socket.subscribe(topic, self._on_message)
        return socket

    async def _close(self) -> None:
        socket, self._socket = self._socket, None
        self._logged_in = False
        self._mark(False)
        if socket is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(socket.close), 2 * CLOSE_TIMEOUT)
        except Exception as exc:
            log.warning("private stream: closing failed: %r", exc)

    # --- on pybit's threads: hop to the loop, never raise -------------------------------------

    def _hop(self, handler: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not self._stopped:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(handler, *args)

    def _answered(self, what: str, accepted: bool, message: str) -> None:
        """The login's answer, or a subscription's: ready once all three topics are on."""
        if not accepted:
            self._refusal = self._refusal or f"{what}: {message}"
            self._ready.set()
        elif what == "a subscription":
            self._subscribed += 1
            if self._subscribed == len(TOPICS):
                self._ready.set()

    def _on_message(self, message: Any) -> None:
        try:
            loop = self._loop
            if loop is None or self._stopped:
                return
            topic = str(message.get("topic") or "").split(".")[0]
            data = message.get("data") or []
            rows: list[Mapping[str, Any]] = [dict(r) for r in data if isinstance(r, Mapping)]
            loop.call_soon_threadsafe(self._deliver, topic, rows)
        except Exception:
            with contextlib.suppress(Exception):
                log.warning("private stream: message dropped", exc_info=True)

    def _deliver(self, topic: str, rows: list[Mapping[str, Any]]) -> None:
        if self._stopped:
            return
        try:
            self._on_push(topic, rows)
        except Exception:
            log.exception("private stream: handling a %s push failed", topic)
