"""The real pybit client against the fake, for the fake's own tests: pybit's private WebSocket at
the fake's address, a collector of its pushes, blocking pybit calls run off the event loop, and
the pytest fixtures (``fake``, ``rest``, ``streams``) that build them.

Test modules import the fixtures by name (``from tests.fakes.bybit.pybit_clients import fake,
rest, streams``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP, WebSocket

from tests.fakes.bybit.server import FakeBybit

KEY, SECRET = "fake-api-key", "fake-api-secret"
TOPICS = ("order", "execution", "position", "wallet")
BTC = {"category": "linear", "symbol": "BTCUSDT"}


class PrivateStream(WebSocket):  # type: ignore[misc]  # pybit is untyped
    """pybit's private WebSocket at ``url``: pybit formats its own wss:// address otherwise."""

    def __init__(
        self, url: str, key: str, secret: str, *, restart_on_error: bool, **options: Any
    ) -> None:
        self._url = url  # before super().__init__(), which connects through _connect()
        super().__init__(
            channel_type="private",
            testnet=False,
            api_key=key,
            api_secret=secret,
            restart_on_error=restart_on_error,
            retries=3,
            **options,
        )

    def _connect(self, url: str) -> None:
        super()._connect(self._url)

    def close(self) -> None:
        """Close for good and wait (bounded) for pybit's socket thread. Blocking."""
        self.handle_error = False
        self.exited = True  # so pybit's error handler takes our own close for no error
        # Say goodbye first: the reader thread ends on the server's close reply. pybit's
        # exit() alone closes the socket under it, and it only notices at its ping timeout.
        connection = getattr(getattr(self, "ws", None), "sock", None)
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.send_close()
        thread = getattr(self, "wst", None)
        if isinstance(thread, threading.Thread):
            thread.join(1.0)
        self.exit()


class Pushes:
    """Collects private-stream messages from pybit's thread; tests wait on them with deadlines."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def __call__(self, message: dict[str, Any]) -> None:  # pybit's thread
        self._loop.call_soon_threadsafe(self._add, message)

    def _add(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self._changed.set()
        self._changed = asyncio.Event()

    def data(self, topic: str) -> list[dict[str, Any]]:
        return [item for m in self.messages if m["topic"] == topic for item in m["data"]]

    async def until(self, condition: Callable[[], bool], timeout: float = 3.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not condition():
                await self._changed.wait()


async def call(session: HTTP, method: str, **params: Any) -> dict[str, Any]:
    """One blocking pybit call, off the event loop (the fake runs on it)."""
    response: dict[str, Any] = await asyncio.to_thread(getattr(session, method), **params)
    return response


async def result(session: HTTP, method: str, **params: Any) -> dict[str, Any]:
    """A pybit call's ``result``."""
    answer: dict[str, Any] = (await call(session, method, **params))["result"]
    return answer


async def refused(session: HTTP, method: str, **params: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        await call(session, method, **params)
    return caught.value


async def socket_thread_ended(stream: PrivateStream, timeout: float = 3.0) -> bool:  # noqa: ASYNC109
    """Wait (with a deadline) for pybit's socket thread to end: it does once pybit gives up."""
    thread: threading.Thread = stream.wst
    await asyncio.to_thread(thread.join, timeout)
    return not thread.is_alive()


def market_order(side: str = "Buy", qty: str = "0.010", **extra: Any) -> dict[str, Any]:
    return {**BTC, "side": side, "orderType": "Market", "qty": qty, "positionIdx": 0, **extra}


@pytest.fixture
async def fake() -> AsyncIterator[FakeBybit]:
    """A started fake with one trading key and 1000 USDT; BTCUSDT at 65000 (bid/ask ± 0.1)."""
    async with FakeBybit() as fake:
        fake.add_api_key(KEY, SECRET)
        fake.set_wallet("1000")
        yield fake


@pytest.fixture
def rest(fake: FakeBybit) -> Iterator[Callable[..., HTTP]]:
    """Builds pybit HTTP sessions against the fake; ``retry_delay=0`` makes pybit's own
    retries quick."""
    made: list[HTTP] = []

    def make(key: str = KEY, secret: str = SECRET, **options: Any) -> HTTP:
        options.setdefault("retry_delay", 0)
        session = HTTP(testnet=False, api_key=key, api_secret=secret, **options)
        session.endpoint = fake.url  # pybit's HTTP has no URL parameter
        made.append(session)
        return session

    yield make
    for session in made:
        session.client.close()


StreamFactory = Callable[..., Awaitable[tuple[PrivateStream, Pushes]]]


@pytest.fixture
async def streams(fake: FakeBybit) -> AsyncIterator[StreamFactory]:
    """Opens pybit private streams subscribed to ``topics``, and closes them afterwards."""
    opened: list[PrivateStream] = []

    async def open_stream(
        secret: str = SECRET,
        *,
        topics: tuple[str, ...] = TOPICS,
        restart_on_error: bool = False,
        **options: Any,
    ) -> tuple[PrivateStream, Pushes]:
        pushes = Pushes()
        stream = await asyncio.to_thread(
            PrivateStream,
            fake.ws_private_url,
            KEY,
            secret,
            restart_on_error=restart_on_error,
            **options,
        )
        opened.append(stream)
        for topic in topics:
            await asyncio.to_thread(getattr(stream, f"{topic}_stream"), pushes)
        for topic in topics:
            await fake.wait_for_private_subscription(topic)
        return stream, pushes

    yield open_stream
    for stream in opened:
        await asyncio.to_thread(stream.close)
