"""What every part of the fake Bybit shares: paths, Bybit's error type and number format, the
request log's records, and one WebSocket connection with its write lock."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.bybit.signing import FakeApiKey

CATEGORY = "linear"
PUBLIC_LINEAR_PATH = "/v5/public/linear"
PRIVATE_PATH = "/v5/private"
STREAM_PATHS = frozenset({PUBLIC_LINEAR_PATH, PRIVATE_PATH})  # WebSocket upgrades, not REST

# Bybit answers a request after a network round trip. pybit 5.17's subscribe() records the
# request id only after it has sent the request, so an instant reply from a loopback server
# kills its socket thread; ~50 ms is a fast but realistic round trip.
DEFAULT_REPLY_DELAY = 0.05

TAKER_FEE_RATE = Decimal("0.00055")  # Bybit's base taker fee on linear perpetuals


class BybitError(Exception):
    """A request Bybit refuses: answered with HTTP 200 and this ``retCode`` / ``retMsg``."""

    def __init__(self, ret_code: int, ret_msg: str) -> None:
        super().__init__(f"{ret_code}: {ret_msg}")
        self.ret_code = ret_code
        self.ret_msg = ret_msg


def params_error(detail: str) -> BybitError:
    return BybitError(10001, detail)


def fmt(value: Decimal) -> str:
    """A decimal as Bybit writes numbers: a plain string, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def fmt_step(value: Decimal, step: str) -> str:
    """A quantity or price with as many decimals as its instrument's step, as Bybit sends them."""
    return format(value.quantize(Decimal(step)), "f")


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake saw it; ``at`` is when it arrived (``time.monotonic()``),
    before any ``rest_delay``."""

    method: str
    path: str
    query: dict[str, str]
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    at: float = 0.0

    @property
    def is_rest(self) -> bool:
        return self.path not in STREAM_PATHS


@dataclass(frozen=True)
class ReceivedWsMessage:
    """One WebSocket message a client sent, with the connection it came on."""

    path: str
    conn_id: str
    message: dict[str, Any]


@dataclass(eq=False)
class StreamConnection:
    """One accepted WebSocket, public or private."""

    ws: web.WebSocketResponse
    request: web.Request
    conn_id: str
    topics: set[str] = field(default_factory=set)  # subscribed (public: snapshot sent)
    owed: set[str] = field(default_factory=set)  # public, subscribed while paused: no snapshot yet
    key: FakeApiKey | None = None  # private: the key it authenticated with
    # A snapshot and a delta must not interleave, and a delta must never precede the
    # snapshot of its topic: every write of one connection goes through this lock.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: dict[str, Any]) -> bool:
        async with self.lock:
            return await self.write(payload)

    async def write(self, payload: dict[str, Any]) -> bool:
        """Write one message (the caller holds ``lock``); False when the client has gone."""
        if self.ws.closed:
            return False
        try:
            await self.ws.send_str(json.dumps(payload))
        except ConnectionError:
            return False
        return True

    def abort(self) -> None:
        """Cut the TCP connection without a close frame, like a network failure."""
        if self.request.transport is not None:
            self.request.transport.abort()
