"""Fault injection for the fake's REST side: refuse the next requests to a path (an HTTP error,
or a Bybit ``retCode``), or carry out a request and hold its reply past the client's timeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# pybit sleeps until X-Bapi-Limit-Reset-Timestamp before retrying a 10006, and crashes on a
# negative sleep if that moment has already passed by the time it reads it: give it a margin.
RATE_LIMIT_RESET_MS = 200


@dataclass
class _Failure:
    http_status: int | None
    ret_code: int | None
    ret_msg: str
    times: int


@dataclass
class _Delay:
    seconds: float
    times: int


class Faults:
    """Mixin of ``FakeBybit``: ``fail_next`` and ``accept_then_timeout``, by a middleware."""

    # Provided by FakeBybit.
    _server_ms: Callable[[], int]
    _envelope: Callable[..., dict[str, Any]]

    def _init_faults(self) -> None:
        self._failures: dict[str, _Failure] = {}
        self._delays: dict[str, _Delay] = {}
        self._stopping = asyncio.Event()  # wakes held replies when the fake stops

    def fail_next(
        self,
        path: str,
        *,
        http_status: int | None = None,
        ret_code: int | None = None,
        ret_msg: str = "fake: injected failure",
        times: int = 1,
    ) -> None:
        """Refuse the next ``times`` requests to ``path``, unprocessed: with ``http_status`` (an
        HTTP error with a text body, e.g. 403 or 502), or with HTTP 200 and Bybit's envelope
        carrying ``ret_code`` / ``ret_msg`` (e.g. 10006 rate limit, 10016 server error)."""
        if (http_status is None) == (ret_code is None):
            raise ValueError("give exactly one of http_status and ret_code")
        self._failures[path] = _Failure(http_status, ret_code, ret_msg, times)

    def accept_then_timeout(self, path: str, delay: float, *, times: int = 1) -> None:
        """Carry out the next ``times`` requests to ``path`` (an order IS placed and filled, and
        its pushes go out) but hold each reply for ``delay`` seconds: a client whose timeout
        is shorter sees a timeout, and the outcome is unknown to it."""
        self._delays[path] = _Delay(delay, times)

    def clear_faults(self) -> None:
        self._failures.clear()
        self._delays.clear()

    @web.middleware
    async def _inject_faults(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
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
            return web.Response(status=failure.http_status, text=failure.ret_msg)
        headers = {}
        if failure.ret_code == 10006:
            headers["X-Bapi-Limit-Reset-Timestamp"] = str(self._server_ms() + RATE_LIMIT_RESET_MS)
        envelope = self._envelope({}, failure.ret_code, failure.ret_msg)
        return web.json_response(envelope, headers=headers)
