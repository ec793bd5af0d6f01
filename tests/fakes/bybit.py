"""A fake Bybit v5 on 127.0.0.1 (aiohttp): the real pybit client runs against it in tests.

It serves public market data (REST and the linear public stream) now; private REST and the
private stream are meant to plug into the same app, routes and request log.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

PUBLIC_LINEAR_PATH = "/v5/public/linear"
CATEGORY = "linear"

# Bybit answers a request after a network round trip. pybit 5.17's subscribe() records the
# request id only after it has sent the request, so an instant reply from a loopback server
# kills its socket thread; ~50 ms is a fast but realistic round trip.
DEFAULT_REPLY_DELAY = 0.05

_T = TypeVar("_T")


@dataclass(frozen=True)
class FakeInstrument:
    """One linear perpetual's trading filters, kept as the strings Bybit sends."""

    symbol: str
    tick_size: str
    qty_step: str
    min_qty: str
    min_notional: str = "5"
    max_qty: str = "1000000"
    max_mkt_qty: str = "100000"
    max_leverage: str = "100.00"
    status: str = "Trading"

    def to_bybit(self) -> dict[str, Any]:
        """One entry of ``instruments-info``'s ``result.list``, shaped as Bybit sends it."""
        base = self.symbol.removesuffix("USDT")
        tick = Decimal(self.tick_size)
        decimals = len(self.tick_size.partition(".")[2])
        return {
            "symbol": self.symbol,
            "contractType": "LinearPerpetual",
            "status": self.status,
            "baseCoin": base,
            "quoteCoin": "USDT",
            "launchTime": "1585526400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": str(decimals),
            "leverageFilter": {
                "minLeverage": "1",
                "maxLeverage": self.max_leverage,
                "leverageStep": "0.01",
            },
            "priceFilter": {
                "minPrice": self.tick_size,
                "maxPrice": str(tick * 19999998),
                "tickSize": self.tick_size,
            },
            "lotSizeFilter": {
                "maxOrderQty": self.max_qty,
                "maxMktOrderQty": self.max_mkt_qty,
                "minOrderQty": self.min_qty,
                "qtyStep": self.qty_step,
                "postOnlyMaxOrderQty": self.max_qty,
                "minNotionalValue": self.min_notional,
            },
            "unifiedMarginTrade": True,
            "fundingInterval": 480,
            "settleCoin": "USDT",
            "copyTrading": "both",
            "upperFundingRate": "0.005",
            "lowerFundingRate": "-0.005",
            "isPreListing": False,
            "preListingInfo": None,
            "displayName": "",
        }


@dataclass(frozen=True)
class FakeTicker:
    """One symbol's top of book; ``None`` for an empty side of the book."""

    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    mark: Decimal
    index: Decimal

    def to_bybit(self) -> dict[str, str]:
        """The ticker fields shared by REST ``tickers`` and the ``tickers.X`` stream."""
        return {
            "symbol": self.symbol,
            "lastPrice": str(self.last),
            "markPrice": str(self.mark),
            "indexPrice": str(self.index),
            "bid1Price": "" if self.bid is None else str(self.bid),
            "bid1Size": "" if self.bid is None else "12.5",
            "ask1Price": "" if self.ask is None else str(self.ask),
            "ask1Size": "" if self.ask is None else "9.8",
            "prevPrice24h": str(self.last),
            "price24hPcnt": "0",
            "highPrice24h": str(self.last),
            "lowPrice24h": str(self.last),
            "prevPrice1h": str(self.last),
            "openInterest": "1000",
            "openInterestValue": str(self.last * 1000),
            "turnover24h": "0",
            "volume24h": "0",
            "fundingRate": "0.0001",
            "nextFundingTime": "1700006400000",
        }


# symbol, tickSize, qtyStep (= minOrderQty), maxOrderQty, maxMktOrderQty, maxLeverage, price:
# Bybit's linear filters as of 2025, near enough for sizing and rounding tests.
DEFAULT_INSTRUMENTS: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("BTCUSDT", "0.10", "0.001", "1190.000", "119.000", "100.00", "65000.00"),
    ("ETHUSDT", "0.01", "0.01", "7240.00", "724.00", "100.00", "3400.00"),
    ("SOLUSDT", "0.010", "0.1", "79770.0", "7977.0", "100.00", "150.000"),
    ("XRPUSDT", "0.0001", "1", "1842000", "184200", "75.00", "0.6000"),
    ("DOGEUSDT", "0.00001", "1", "29165000", "2916500", "75.00", "0.15000"),
    ("ADAUSDT", "0.0001", "1", "3050000", "305000", "75.00", "0.4500"),
    ("BNBUSDT", "0.10", "0.01", "1500.00", "150.00", "75.00", "580.00"),
    ("LINKUSDT", "0.001", "0.1", "112000.0", "11200.0", "75.00", "14.000"),
    ("AVAXUSDT", "0.001", "0.1", "54500.0", "5450.0", "50.00", "28.000"),
    ("HYPEUSDT", "0.001", "0.01", "35000.00", "3500.00", "25.00", "30.000"),
    ("TRXUSDT", "0.00001", "1", "8000000", "800000", "75.00", "0.12000"),
    ("YFIUSDT", "1", "0.0001", "11.4000", "1.1400", "50.00", "5200"),
)


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    body: str


@dataclass(frozen=True)
class ReceivedWsMessage:
    """One WebSocket message a client sent, with the connection it came on."""

    path: str
    conn_id: str
    message: dict[str, Any]


@dataclass(eq=False)
class _PublicConnection:
    ws: web.WebSocketResponse
    request: web.Request
    conn_id: str
    topics: set[str] = field(default_factory=set)  # subscribed, snapshot sent
    owed: set[str] = field(default_factory=set)  # subscribed while paused: snapshot not sent yet
    # A snapshot and a delta must not interleave, and a delta must never precede the
    # snapshot of its topic: every write of one connection goes through this lock.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _envelope(result: Any, ret_code: int = 0, ret_msg: str = "OK") -> dict[str, Any]:
    return {
        "retCode": ret_code,
        "retMsg": ret_msg,
        "result": result,
        "retExtInfo": {},
        "time": _now_ms(),
    }


class FakeBybit:
    """A loopback Bybit v5: instruments, tickers and the public linear stream, plus test controls.

    Start it with ``await fake.start()`` (or ``async with``) in the test's own event loop.
    """

    def __init__(self, *, reply_delay: float = DEFAULT_REPLY_DELAY, seed: bool = True) -> None:
        self.reply_delay = reply_delay
        self.instruments: dict[str, FakeInstrument] = {}
        self.tickers: dict[str, FakeTicker] = {}
        self.requests: list[RecordedRequest] = []
        self.ws_messages: list[ReceivedWsMessage] = []
        self.public_connections = 0  # how many public stream connections were ever accepted
        self.refuse_public_streams = False  # answer the WebSocket upgrade with HTTP 503
        self._public: set[_PublicConnection] = set()
        self._pushes_paused = False
        self._sequence = 0
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
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
        app = web.Application(middlewares=[self._record_request])
        app.add_routes(self._public_routes())
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self.drop_public_streams()
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

    def _public_routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v5/market/time", self._get_time),
            web.get("/v5/market/instruments-info", self._get_instruments),
            web.get("/v5/market/tickers", self._get_tickers),
            web.get(PUBLIC_LINEAR_PATH, self._public_stream),
        ]

    # -- test controls ---------------------------------------------------------------------

    def seed_instrument(
        self,
        symbol: str,
        tick_size: str,
        qty_step: str,
        min_qty: str,
        min_notional: str = "5",
        *,
        max_qty: str = "1000000",
        max_mkt_qty: str = "100000",
        max_leverage: str = "100.00",
        status: str = "Trading",
        price: str | Decimal | None = "100",
    ) -> FakeInstrument:
        """List (or replace) an instrument; with ``price``, also give it a ticker there."""
        instrument = FakeInstrument(
            symbol=symbol,
            tick_size=tick_size,
            qty_step=qty_step,
            min_qty=min_qty,
            min_notional=min_notional,
            max_qty=max_qty,
            max_mkt_qty=max_mkt_qty,
            max_leverage=max_leverage,
            status=status,
        )
        self.instruments[symbol] = instrument
        if price is not None:
            last = Decimal(price)
            self.tickers[symbol] = FakeTicker(
                symbol, last, *self._book_around(symbol, last), mark=last, index=last
            )
        return instrument

    async def set_ticker(
        self,
        symbol: str,
        last: str | Decimal,
        bid: str | Decimal | None = None,
        ask: str | Decimal | None = None,
    ) -> None:
        """Move ``symbol``'s prices and push a ``delta`` of the changed fields to its subscribers.

        ``bid``/``ask`` of ``None`` sit one tick around ``last``; ``""`` empties that side.
        Returns once the delta has been written to every subscribed socket.
        """
        price = Decimal(last)
        default_bid, default_ask = self._book_around(symbol, price)
        new = FakeTicker(
            symbol,
            price,
            default_bid if bid is None else (Decimal(bid) if bid != "" else None),
            default_ask if ask is None else (Decimal(ask) if ask != "" else None),
            mark=price,
            index=price,
        )
        old = self.tickers.get(symbol)
        self.tickers[symbol] = new
        before = {} if old is None else old.to_bybit()
        changed = {k: v for k, v in new.to_bybit().items() if before.get(k) != v}
        # Bybit's deltas carry the changed fields only; a trade at the same price still moves
        # lastPrice's timestamp, so a delta is never empty here.
        changed.setdefault("lastPrice", str(price))
        changed["symbol"] = symbol
        await self._push(f"tickers.{symbol}", "delta", changed)

    def pause_public_pushes(self) -> None:
        """Stop pushing snapshots and deltas: the stream goes silent; requests still get replies."""
        self._pushes_paused = True

    def resume_public_pushes(self) -> None:
        self._pushes_paused = False

    @property
    def pushes_paused(self) -> bool:
        return self._pushes_paused

    async def drop_public_streams(self, *, abrupt: bool = False) -> None:
        """Close every public stream connection: with a close frame (``GOING_AWAY``, as Bybit
        does on maintenance), or ``abrupt``ly, like a network failure."""
        connections, self._public = list(self._public), set()
        self._notify()
        for conn in connections:
            if abrupt:
                if conn.request.transport is not None:
                    conn.request.transport.abort()
            else:
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake: dropped")

    def subscribed_topics(self) -> set[str]:
        """Topics some open connection has been told it is subscribed to."""
        return {topic for conn in self._public for topic in conn.topics | conn.owed}

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    # A deadline is the point of these helpers, so they take one (ASYNC109).
    async def wait_until(self, condition: Callable[[], bool], timeout: float = 2.0) -> None:  # noqa: ASYNC109
        """Return once ``condition()`` holds; it is re-checked on every request, message,
        connection and subscription. Raises ``TimeoutError`` after ``timeout`` seconds."""
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

    async def wait_for_subscription(self, topic: str, timeout: float = 2.0) -> None:  # noqa: ASYNC109
        try:
            await self.wait_until(lambda: topic in self.subscribed_topics(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no subscription to {topic} within {timeout}s; "
                f"subscribed: {sorted(self.subscribed_topics())}"
            ) from None

    # -- plumbing --------------------------------------------------------------------------

    def _notify(self) -> None:
        # Wake every waiter, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    def _book_around(self, symbol: str, last: Decimal) -> tuple[Decimal, Decimal]:
        instrument = self.instruments.get(symbol)
        tick = Decimal(instrument.tick_size) if instrument else Decimal(0)
        return last - tick, last + tick

    @web.middleware
    async def _record_request(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        body = await request.text() if request.can_read_body else ""
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.query), body)
        )
        self._notify()
        response: web.StreamResponse = await handler(request)
        return response

    # -- public REST -----------------------------------------------------------------------

    async def _get_time(self, request: web.Request) -> web.Response:
        now_ns = time.time_ns()
        return web.json_response(
            _envelope({"timeSecond": str(now_ns // 1_000_000_000), "timeNano": str(now_ns)})
        )

    async def _get_instruments(self, request: web.Request) -> web.Response:
        if request.query.get("category") != CATEGORY:
            return web.json_response(_envelope({}, 10001, "params error: category is invalid"))
        symbol = request.query.get("symbol")
        # Bybit answers an unknown symbol with success and an empty list.
        chosen = self._select(self.instruments, symbol)
        result = {
            "category": CATEGORY,
            "list": [instrument.to_bybit() for instrument in chosen],
            "nextPageCursor": "",
        }
        return web.json_response(_envelope(result))

    async def _get_tickers(self, request: web.Request) -> web.Response:
        if request.query.get("category") != CATEGORY:
            return web.json_response(_envelope({}, 10001, "params error: category is invalid"))
        symbol = request.query.get("symbol")
        if symbol is not None and symbol not in self.tickers:
            return web.json_response(_envelope({}, 10001, "Not supported symbols"))
        rows = [self._rest_ticker(t) for t in self._select(self.tickers, symbol)]
        return web.json_response(_envelope({"category": CATEGORY, "list": rows}))

    @staticmethod
    def _select(items: dict[str, _T], symbol: str | None) -> Iterable[_T]:
        if symbol is None:
            return list(items.values())
        return [items[symbol]] if symbol in items else []

    @staticmethod
    def _rest_ticker(ticker: FakeTicker) -> dict[str, str]:
        return {
            **ticker.to_bybit(),
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "basis": "",
        }

    # -- public stream ---------------------------------------------------------------------

    async def _public_stream(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_public_streams:
            return web.Response(status=503, text="fake: public stream unavailable")
        # Answers protocol-level pings itself; a client that never answers our close frame
        # holds up stop() for 1 s, not aiohttp's default 10 s.
        ws = web.WebSocketResponse(timeout=1.0)
        await ws.prepare(request)
        conn = _PublicConnection(ws=ws, request=request, conn_id=str(uuid.uuid4()))
        self._public.add(conn)
        self.public_connections += 1
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
                await self._answer_public(conn, message)
        finally:
            self._public.discard(conn)
            self._notify()
        return ws

    async def _answer_public(self, conn: _PublicConnection, message: dict[str, Any]) -> None:
        await asyncio.sleep(self.reply_delay)  # a network round trip; see DEFAULT_REPLY_DELAY
        op = message.get("op")
        args = [str(a) for a in message.get("args") or []]
        reply: dict[str, Any] = {
            "success": True,
            "ret_msg": "",
            "conn_id": conn.conn_id,
            "req_id": message.get("req_id", ""),
            "op": op,
        }
        if op == "ping":
            await self._send(conn, {**reply, "ret_msg": "pong"})
        elif op == "subscribe":
            refused = [t for t in args if self._topic_symbol(t) is None]
            again = [t for t in args if t in conn.topics or t in conn.owed]
            if refused:
                failure = f"Invalid symbol :[{','.join(refused)}]"
                await self._send(conn, {**reply, "success": False, "ret_msg": failure})
            elif again:
                failure = f"error:already subscribed,topic:{again[0]}"
                await self._send(conn, {**reply, "success": False, "ret_msg": failure})
            else:
                await self._send(conn, reply)
                for topic in args:
                    await self._send_snapshot(conn, topic)
        elif op == "unsubscribe":
            conn.topics.difference_update(args)
            conn.owed.difference_update(args)
            self._notify()
            await self._send(conn, reply)
        else:
            failure = f"error:unknown op {op}"
            await self._send(conn, {**reply, "success": False, "ret_msg": failure})

    def _topic_symbol(self, topic: str) -> str | None:
        kind, _, symbol = topic.partition(".")
        return symbol if kind == "tickers" and symbol in self.tickers else None

    async def _send_snapshot(self, conn: _PublicConnection, topic: str) -> None:
        """Send ``topic``'s snapshot, or owe it while pushes are paused: like Bybit, a topic's
        first message on a connection is always its snapshot (pybit relies on that)."""
        async with conn.lock:
            if self._pushes_paused:
                conn.owed.add(topic)
            else:
                symbol = topic.partition(".")[2]
                data = self.tickers[symbol].to_bybit()
                if not await self._write(conn, self._stream_message(topic, "snapshot", data)):
                    return
                conn.owed.discard(topic)
                conn.topics.add(topic)
        self._notify()

    async def _push(self, topic: str, kind: str, data: dict[str, str]) -> None:
        if self._pushes_paused:
            return
        message = self._stream_message(topic, kind, data)
        for conn in list(self._public):
            if topic in conn.owed:
                await self._send_snapshot(conn, topic)
            elif topic in conn.topics:
                await self._send(conn, message)

    def _stream_message(self, topic: str, kind: str, data: dict[str, str]) -> dict[str, Any]:
        self._sequence += 1
        return {"topic": topic, "type": kind, "data": data, "cs": self._sequence, "ts": _now_ms()}

    async def _send(self, conn: _PublicConnection, payload: dict[str, Any]) -> bool:
        async with conn.lock:
            return await self._write(conn, payload)

    @staticmethod
    async def _write(conn: _PublicConnection, payload: dict[str, Any]) -> bool:
        """Write one message; False when the client has already gone."""
        if conn.ws.closed:
            return False
        try:
            await conn.ws.send_str(json.dumps(payload))
        except ConnectionError:
            return False
        return True
