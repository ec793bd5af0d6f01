"""``FakeBybit``: the loopback Bybit v5 server (aiohttp) that the real pybit client runs against,
with the test controls and inspection helpers of every part."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
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
from tests.fakes.bybit.faults import Faults
from tests.fakes.bybit.market import DEFAULT_INSTRUMENTS, FakeInstrument, FakeTicker
from tests.fakes.bybit.private_rest import PrivateRest
from tests.fakes.bybit.private_ws import PrivateStream
from tests.fakes.bybit.public import PublicMarket
from tests.fakes.bybit.records import FakeClosedPnl, FakeExecution, FakeOrder, FakePosition
from tests.fakes.bybit.signing import FakeApiKey


class FakeBybit(PublicMarket, PrivateRest, PrivateStream, Faults):
    """A loopback Bybit v5: instruments, tickers and the public linear stream; with an API key,
    a unified account trading linear perpetuals (one-way, market orders) by private REST and
    the private stream; plus test controls and fault injection.

    Start it with ``await fake.start()`` (or ``async with``) in the test's own event loop.
    """

    def __init__(self, *, reply_delay: float = DEFAULT_REPLY_DELAY, seed: bool = True) -> None:
        self.reply_delay = reply_delay
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

    # -- the account: controls -------------------------------------------------------------

    def add_api_key(
        self,
        key: str,
        secret: str,
        *,
        read_only: bool = False,
        withdraw: bool = False,
        transfer: bool = False,
        contract_trade: bool = True,
        unified: bool = True,
    ) -> FakeApiKey:
        """Accept ``key`` signed with ``secret``; every key trades the one fake account."""
        api_key = FakeApiKey(
            key,
            secret,
            read_only=read_only,
            withdraw=withdraw,
            transfer=transfer,
            contract_trade=contract_trade,
            unified=unified,
        )
        self.api_keys[key] = api_key
        return api_key

    def set_wallet(self, balance: str | Decimal) -> None:
        """Set the USDT wallet balance (walletBalance), e.g. before the first order."""
        self.account.wallet = Decimal(balance)

    def set_fee_rate(self, rate: str | Decimal) -> None:
        self.account.fee_rate = Decimal(rate)

    def set_clock_offset(self, offset_ms: int) -> None:
        """Run the server's clock ``offset_ms`` ahead of ours (negative: behind)."""
        self.clock_offset_ms = offset_ms

    def server_time_ms(self) -> int:
        """The server's clock (ours plus the offset), as it checks timestamps and expiries."""
        return self._server_ms()

    async def open_position(
        self,
        symbol: str,
        side: str,
        qty: str | Decimal,
        price: str | Decimal,
        *,
        leverage: str | Decimal | None = None,
        take_profit: str | Decimal | None = None,
        stop_loss: str | Decimal | None = None,
    ) -> FakePosition:
        """A position already open on the exchange (as if opened elsewhere, no fee charged),
        with its TP/SL orders; pushed to private subscribers like any change."""
        position = self.account.seed_position(
            symbol,
            side,
            Decimal(qty),
            Decimal(price),
            leverage=None if leverage is None else Decimal(leverage),
            take_profit=None if take_profit is None else Decimal(take_profit),
            stop_loss=None if stop_loss is None else Decimal(stop_loss),
        )
        self.account.pushes.append(("position", self.account.position_row(symbol, stream=True)))
        await self._flush_account()
        return position

    async def close_by_hand(self, symbol: str) -> None:
        """Close ``symbol``'s position as a person would on Bybit's own site: a reduce-only
        market order with no orderLinkId of the bot's; pushed like any change."""
        position = self.account.positions[symbol]
        self.account.place_order(
            {
                "category": "linear",
                "symbol": symbol,
                "side": "Sell" if position.side == "Buy" else "Buy",
                "orderType": "Market",
                "qty": str(position.size),
                "reduceOnly": True,
                "positionIdx": 0,
            }
        )
        await self._flush_account()

    # -- the account: inspection -----------------------------------------------------------

    @property
    def wallet_balance(self) -> Decimal:
        return self.account.wallet

    @property
    def orders(self) -> list[FakeOrder]:
        """Every order, oldest first: those clients placed and the TP/SL conditional ones."""
        return list(self.account.orders)

    def order(self, order_link_id: str) -> FakeOrder | None:
        """The order placed with ``order_link_id``, if any."""
        return next((o for o in self.account.orders if o.order_link_id == order_link_id), None)

    @property
    def positions(self) -> dict[str, FakePosition]:
        """Open positions by symbol."""
        return dict(self.account.positions)

    def position(self, symbol: str) -> FakePosition | None:
        return self.account.positions.get(symbol)

    @property
    def executions(self) -> list[FakeExecution]:
        return list(self.account.executions)

    @property
    def closed_pnl(self) -> list[FakeClosedPnl]:
        return list(self.account.closed_pnl)

    # -- requests and waiting --------------------------------------------------------------

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

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
        self.requests.append(
            RecordedRequest(
                request.method, request.path, dict(request.query), body, dict(request.headers)
            )
        )
        self._notify()
        response: web.StreamResponse = await handler(request)
        return response
