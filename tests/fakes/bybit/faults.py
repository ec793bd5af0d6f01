"""Fault injection for the fake's REST side: refuse the next requests to a path (an HTTP error,
or a Bybit ``retCode``), carry out a request and hold its reply past the client's timeout, or
ban the client's IP.

Bybit's docs on these answers: an IP over the HTTP limit gets "403, access too frequent" on
every call and should stop for at least 10 minutes, after which the ban lifts by itself; HTTP
429 is "system level frequency protection" (retry); retCode 10006 is the per-UID rate limit
("Too many visits!", with X-Bapi-Limit-Reset-Timestamp); retCode 429 ("the trading service is
experiencing a high server load") and -1 ("request expired") come with HTTP 200 and are retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.bybit.common import STREAM_PATHS

# pybit sleeps until X-Bapi-Limit-Reset-Timestamp before retrying a 10006, and crashes on a
# negative sleep if that moment has already passed by the time it reads it: give it a margin.
RATE_LIMIT_RESET_MS = 200
BAN_BODY = "403, access too frequent"  # Bybit's docs quote the ban's answer so


@dataclass
class _Failure:
    http_status: int | None
    ret_code: int | None
    ret_msg: str
    body: str | None
    times: int


@dataclass
class _Delay:
    seconds: float
    times: int


class Faults:
    """Mixin of ``FakeBybit``: ``fail_next``, ``accept_then_timeout`` and ``ban_ip``, by a
    middleware."""

    # Provided by FakeBybit.
    _notify: Callable[[], None]
    _server_ms: Callable[[], int]
    _envelope: Callable[..., dict[str, Any]]

    def _init_faults(self) -> None:
        self._failures: dict[str, _Failure] = {}
        self._delays: dict[str, _Delay] = {}
        self._banned_until: float | None = None  # loop time
        self._stopping = asyncio.Event()  # wakes held replies when the fake stops

    def fail_next(
        self,
        path: str,
        *,
        http_status: int | None = None,
        ret_code: int | None = None,
        ret_msg: str = "fake: injected failure",
        body: str | None = None,
        times: int = 1,
    ) -> None:
        """Refuse the next ``times`` requests to ``path``, unprocessed: with ``http_status`` (an
        HTTP error whose text body is ``body``, by default ``ret_msg``; e.g. 429 with
        ``body=""``, or 502), or with HTTP 200 and Bybit's envelope carrying ``ret_code`` /
        ``ret_msg`` (e.g. -1, 429, 10006 rate limit, 10016 server error)."""
        if (http_status is None) == (ret_code is None):
            raise ValueError("give exactly one of http_status and ret_code")
        self._failures[path] = _Failure(http_status, ret_code, ret_msg, body, times)

    def accept_then_timeout(self, path: str, delay: float, *, times: int = 1) -> None:
        """Carry out the next ``times`` requests to ``path`` (an order IS placed and filled, and
        its pushes go out) but hold each reply for ``delay`` seconds: a client whose timeout
        is shorter sees a timeout, and the outcome is unknown to it."""
        self._delays[path] = _Delay(delay, times)

    def ban_ip(self, seconds: float | None = None) -> None:
        """Answer every REST call, public and private, with HTTP 403 "access too frequent"
        (unprocessed) for ``seconds``, or until ``lift_ban``. The streams are not affected.
        ``wait_until`` wakes when the ban ends."""
        loop = asyncio.get_running_loop()
        self._banned_until = float("inf") if seconds is None else loop.time() + seconds
        if seconds is not None:
            loop.call_later(seconds, self._notify)

    def lift_ban(self) -> None:
        self._banned_until = None
        self._notify()

    @property
    def banned(self) -> bool:
        until = self._banned_until
        return until is not None and asyncio.get_running_loop().time() < until

    def clear_faults(self) -> None:
        self._failures.clear()
        self._delays.clear()
        self._banned_until = None

    @web.middleware
    async def _inject_faults(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.path not in STREAM_PATHS and self.banned:
            return web.Response(status=403, text=BAN_BODY)
        failure = self._failures.get(request.path)
        if failure is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self._failures[request.path]
            return self._failure_response(failure)
        response: web.StreamResponse = await handler(request)
        delay = self._delays.get(request.path)
        if delay is not None:
            delay.times -= 1
            if delay.times <= 0:
                del self._delays[request.path]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay.seconds)
        return response

    def _failure_response(self, failure: _Failure) -> web.Response:
        if failure.http_status is not None:
            text = failure.ret_msg if failure.body is None else failure.body
            return web.Response(status=failure.http_status, text=text)
        headers = {}
        if failure.ret_code == 10006:
            headers["X-Bapi-Limit-Reset-Timestamp"] = str(self._server_ms() + RATE_LIMIT_RESET_MS)
        envelope = self._envelope({}, failure.ret_code, failure.ret_msg)
        return web.json_response(envelope, headers=headers)
