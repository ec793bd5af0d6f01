"""``FakeBybit``: the loopback Bybit v5 server (aiohttp) that the real pybit client runs against,
with the test controls and inspection helpers of every part."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.bybit.account import FakeAccount
from tests.fakes.bybit.common import (
    DEFAULT_REPLY_DELAY,
    PRIVATE_PATH,
    PUBLIC_LINEAR_PATH,
    ReceivedWsMessage,
    RecordedRequest,
)
from tests.fakes.bybit.controls import AccountControls
from tests.fakes.bybit.faults import Faults
from tests.fakes.bybit.market import (
    DATED_FUTURE,
    DATED_FUTURE_DELIVERY_MS,
    DEFAULT_INSTRUMENTS,
    USDC_PERPETUAL,
    FakeInstrument,
    FakeTicker,
)
from tests.fakes.bybit.private_rest import PrivateRest
from tests.fakes.bybit.private_ws import PrivateStream
from tests.fakes.bybit.public import PublicMarket
from tests.fakes.bybit.signing import FakeApiKey


class FakeBybit(PublicMarket, PrivateRest, PrivateStream, Faults, AccountControls):
    """A loopback Bybit v5: instruments, tickers and the public linear stream; with an API key,
    a unified account trading linear contracts (one-way, market orders) by private REST and
    the private stream; plus test controls and fault injection.

    ``reply_delay``: the stream's answers to a client's requests; ``rest_delay``: every REST
    answer (see ``set_rest_delay``). ``seed``: list the default instruments with tickers (the
    USDT perpetuals of ``DEFAULT_INSTRUMENTS``, a USDC perpetual and a dated future).

    Start it with ``await fake.start()`` (or ``async with``) in the test's own event loop.
    """

    def __init__(
        self,
        *,
        reply_delay: float = DEFAULT_REPLY_DELAY,
        rest_delay: float = 0.0,
        seed: bool = True,
    ) -> None:
        self.reply_delay = reply_delay
        self.rest_delay = rest_delay
        self.instruments: dict[str, FakeInstrument] = {}
        self.tickers: dict[str, FakeTicker] = {}
        self.requests: list[RecordedRequest] = []
        self.ws_messages: list[ReceivedWsMessage] = []
        self.api_keys: dict[str, FakeApiKey] = {}
        self.clock_offset_ms = 0  # the server's clock minus ours: simulates clock skew
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._init_public()
        self._init_private_stream()
        self._init_faults()
        self.account = FakeAccount(self.instruments, self.tickers, self._server_ms)
        if seed:
            for symbol, tick, step, max_qty, max_mkt, leverage, price in DEFAULT_INSTRUMENTS:
                self.seed_instrument(
                    symbol,
                    tick_size=tick,
                    qty_step=step,
                    min_qty=step,
                    max_qty=max_qty,
                    max_mkt_qty=max_mkt,
                    max_leverage=leverage,
                    price=price,
                )
            self._seed_other_linear()

    def _seed_other_linear(self) -> None:
        # Bybit lists these under category=linear beside the USDT perpetuals (see market.py).
        self.seed_instrument(
            USDC_PERPETUAL,
            "0.10",
            "0.001",
            "0.001",
            "1",
            max_qty="1190.000",
            max_mkt_qty="119.000",
            settle_coin="USDC",
            price="65010.00",
        )
        self.seed_instrument(
            DATED_FUTURE,
            "0.50",
            "0.001",
            "0.001",
            "1",
            max_qty="500.000",
            max_mkt_qty="50.000",
            max_leverage="50.00",
            contract_type="LinearFutures",
            delivery_time=DATED_FUTURE_DELIVERY_MS,
            delivery_fee_rate="0.0005",
            price="66500.00",
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._record_request, self._inject_faults])
        app.add_routes(self._public_routes())
        app.add_routes(self._private_routes())
        app.add_routes(self._private_stream_routes())
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._stopping.set()  # release replies held by accept_then_timeout
        await self.drop_public_streams()
        await self.drop_private_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBybit:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The REST base, e.g. ``http://127.0.0.1:54321``."""
        if self._port is None:
            raise RuntimeError("FakeBybit is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def ws_public_url(self) -> str:
        return self.url.replace("http://", "ws://") + PUBLIC_LINEAR_PATH

    @property
    def ws_private_url(self) -> str:
        return self.url.replace("http://", "ws://") + PRIVATE_PATH

    def set_clock_offset(self, offset_ms: int) -> None:
        """Run the server's clock ``offset_ms`` ahead of ours (negative: behind)."""
        self.clock_offset_ms = offset_ms

    def server_time_ms(self) -> int:
        """The server's clock (ours plus the offset), as it checks timestamps and expiries."""
        return self._server_ms()

    def set_rest_delay(self, seconds: float) -> None:
        """Answer every REST request (public and private) ``seconds`` after it arrives: a
        network round trip. The request is recorded on arrival, then handled after the delay."""
        self.rest_delay = seconds

    # -- requests and waiting --------------------------------------------------------------

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def rest_calls(self, path: str | None = None, since: int = 0) -> list[RecordedRequest]:
        """REST requests (not stream upgrades), refused ones included, from index ``since`` of
        ``requests`` on (``mark = len(fake.requests)`` before the part of a test to count);
        only those to ``path`` if given."""
        return [r for r in self.requests[since:] if r.is_rest and (path is None or r.path == path)]

    # A deadline is the point of these helpers, so they take one (ASYNC109).
    async def wait_until(self, condition: Callable[[], bool], timeout: float = 2.0) -> None:  # noqa: ASYNC109
        """Return once ``condition()`` holds; it is re-checked on every request, message,
        connection, subscription and account change. Raises ``TimeoutError`` after
        ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                raise TimeoutError(f"condition not met within {timeout}s") from None

    # -- plumbing --------------------------------------------------------------------------

    def _notify(self) -> None:
        # Wake every waiter, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    def _server_ns(self) -> int:
        return time.time_ns() + self.clock_offset_ms * 1_000_000

    def _server_ms(self) -> int:
        return self._server_ns() // 1_000_000

    def _envelope(self, result: Any, ret_code: int = 0, ret_msg: str = "OK") -> dict[str, Any]:
        return {
            "retCode": ret_code,
            "retMsg": ret_msg,
            "result": result,
            "retExtInfo": {},
            "time": self._server_ms(),
        }

    async def _on_price_change(self, symbol: str) -> None:
        self.account.on_ticker(symbol)
        await self._flush_account()

    async def _flush_account(self) -> None:
        pushes, self.account.pushes = self.account.pushes, []
        await self._publish(pushes)

    @web.middleware
    async def _record_request(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        body = await request.text()
        recorded = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            body,
            dict(request.headers),
            at=time.monotonic(),
        )
        self.requests.append(recorded)
        self._notify()
        if recorded.is_rest and self.rest_delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.rest_delay)
        response: web.StreamResponse = await handler(request)
        return response
