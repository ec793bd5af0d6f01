"""The fake's public side: server time, instruments and tickers by REST, and the public linear
stream (``tickers.X`` snapshots and deltas, pongs), with the test controls that move, silence and
stall it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from tests.fakes.bybit.common import (
    CATEGORY,
    PUBLIC_LINEAR_PATH,
    BybitError,
    ReceivedWsMessage,
    StreamConnection,
)
from tests.fakes.bybit.market import FakeInstrument, FakeTicker
from tests.fakes.bybit.paging import INSTRUMENT_LIMITS, page

_T = TypeVar("_T")


class PublicMarket:
    """Mixin of ``FakeBybit``: its public REST routes and public stream."""

    # Provided by FakeBybit.
    instruments: dict[str, FakeInstrument]
    tickers: dict[str, FakeTicker]
    reply_delay: float
    ws_messages: list[ReceivedWsMessage]
    _notify: Callable[[], None]
    _server_ms: Callable[[], int]
    _server_ns: Callable[[], int]
    _envelope: Callable[..., dict[str, Any]]
    _on_price_change: Callable[[str], Awaitable[None]]
    wait_until: Callable[..., Awaitable[None]]

    def _init_public(self) -> None:
        self.public_connections = 0  # how many public stream connections were ever accepted
        self.refuse_public_streams = False  # answer the WebSocket upgrade with HTTP 503
        self._public: set[StreamConnection] = set()
        self._pushes_paused = False
        self._pongs = 0
        self._stalled: set[StreamConnection] = set()  # up, but answering and pushing nothing
        self._sequence = 0

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
        contract_type: str = "LinearPerpetual",
        settle_coin: str = "USDT",
        quote_coin: str = "",
        base_coin: str = "",
        delivery_time: str = "0",
        delivery_fee_rate: str = "",
    ) -> FakeInstrument:
        """List (or replace) an instrument; with ``price``, also give it a ticker there.

        ``contract_type`` "LinearPerpetual" or "LinearFutures" (a dated future, with its
        ``delivery_time`` in ms); ``settle_coin`` "USDT" or "USDC" (a USDC perpetual is named
        like "BTCPERP"). ``quote_coin`` defaults to the settle coin and ``base_coin`` to the
        symbol less its quote coin."""
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
            contract_type=contract_type,
            settle_coin=settle_coin,
            quote_coin=quote_coin,
            base_coin=base_coin,
            delivery_time=delivery_time,
            delivery_fee_rate=delivery_fee_rate,
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
        Returns once the delta has been written to every subscribed socket, and once a TP or SL
        the new last price crossed has been filled (and pushed on the private stream).
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
        await self._on_price_change(symbol)

    def pause_public_pushes(self) -> None:
        """Stop pushing snapshots and deltas: the stream goes silent; requests still get replies."""
        self._pushes_paused = True

    def resume_public_pushes(self) -> None:
        self._pushes_paused = False

    @property
    def pushes_paused(self) -> bool:
        return self._pushes_paused

    def stall_public_streams(self) -> None:
        """The public streams open now stop answering (pings, subscriptions) and pushing, while
        their connections stay up: a venue that hangs without closing. Later ones work."""
        self._stalled.update(self._public)

    @property
    def public_pongs(self) -> int:
        """How many pings the public streams have answered."""
        return self._pongs

    async def drop_public_streams(self, *, abrupt: bool = False) -> None:
        """Close every public stream connection: with a close frame (``GOING_AWAY``, as Bybit
        does on maintenance), or ``abrupt``ly, like a network failure."""
        connections, self._public = list(self._public), set()
        self._notify()
        for conn in connections:
            if abrupt:
                conn.abort()
            else:
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake: dropped")

    def subscribed_topics(self) -> set[str]:
        """Topics some open public connection has been told it is subscribed to."""
        return {topic for conn in self._public for topic in conn.topics | conn.owed}

    async def wait_for_subscription(self, topic: str, timeout: float = 2.0) -> None:  # noqa: ASYNC109
        try:
            await self.wait_until(lambda: topic in self.subscribed_topics(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no subscription to {topic} within {timeout}s; "
                f"subscribed: {sorted(self.subscribed_topics())}"
            ) from None

    def _book_around(self, symbol: str, last: Decimal) -> tuple[Decimal, Decimal]:
        instrument = self.instruments.get(symbol)
        tick = Decimal(instrument.tick_size) if instrument else Decimal(0)
        return last - tick, last + tick

    # -- public REST -----------------------------------------------------------------------

    async def _get_time(self, request: web.Request) -> web.Response:
        now_ns = self._server_ns()
        return web.json_response(
            self._envelope({"timeSecond": str(now_ns // 1_000_000_000), "timeNano": str(now_ns)})
        )

    async def _get_instruments(self, request: web.Request) -> web.Response:
        if request.query.get("category") != CATEGORY:
            return self._refuse(10001, "params error: category is invalid")
        symbol = request.query.get("symbol")
        # Bybit answers an unknown symbol with success and an empty list.
        chosen = sorted(self._select(self.instruments, symbol), key=lambda i: i.symbol)
        try:
            rows, cursor = page([(i.symbol, i) for i in chosen], request.query, INSTRUMENT_LIMITS)
        except BybitError as refused:
            return self._refuse(refused.ret_code, refused.ret_msg)
        result = {
            "category": CATEGORY,
            "list": [instrument.to_bybit() for instrument in rows],
            "nextPageCursor": cursor,
        }
        return web.json_response(self._envelope(result))

    async def _get_tickers(self, request: web.Request) -> web.Response:
        if request.query.get("category") != CATEGORY:
            return self._refuse(10001, "params error: category is invalid")
        symbol = request.query.get("symbol")
        if symbol is not None and symbol not in self.tickers:
            return self._refuse(10001, "Not supported symbols")
        rows = [
            self._rest_ticker(t, self.instruments.get(t.symbol))
            for t in self._select(self.tickers, symbol)
        ]
        return web.json_response(self._envelope({"category": CATEGORY, "list": rows}))

    def _refuse(self, ret_code: int, ret_msg: str) -> web.Response:
        return web.json_response(self._envelope({}, ret_code, ret_msg))

    @staticmethod
    def _select(items: dict[str, _T], symbol: str | None) -> Iterable[_T]:
        if symbol is None:
            return list(items.values())
        return [items[symbol]] if symbol in items else []

    @staticmethod
    def _rest_ticker(ticker: FakeTicker, instrument: FakeInstrument | None) -> dict[str, str]:
        return {
            **ticker.to_bybit(),
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "basisRateYear": "",
            "deliveryFeeRate": "" if instrument is None else instrument.delivery_fee_rate,
            "deliveryTime": "0" if instrument is None else instrument.delivery_time,
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
        conn = StreamConnection(ws=ws, request=request, conn_id=str(uuid.uuid4()))
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
            self._stalled.discard(conn)
            self._notify()
        return ws

    async def _answer_public(self, conn: StreamConnection, message: dict[str, Any]) -> None:
        await asyncio.sleep(self.reply_delay)  # a network round trip; see DEFAULT_REPLY_DELAY
        if conn in self._stalled:
            return
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
            # Bybit's pong echoes the ping's req_id only when it had one.
            pong = {k: v for k, v in reply.items() if k != "req_id" or "req_id" in message}
            if await conn.send({**pong, "ret_msg": "pong"}):
                self._pongs += 1
                self._notify()
        elif op == "subscribe":
            refused = [t for t in args if self._topic_symbol(t) is None]
            again = [t for t in args if t in conn.topics or t in conn.owed]
            if refused:
                failure = f"Invalid symbol :[{','.join(refused)}]"
                await conn.send({**reply, "success": False, "ret_msg": failure})
            elif again:
                failure = f"error:already subscribed,topic:{again[0]}"
                await conn.send({**reply, "success": False, "ret_msg": failure})
            else:
                await conn.send(reply)
                for topic in args:
                    await self._send_snapshot(conn, topic)
        elif op == "unsubscribe":
            conn.topics.difference_update(args)
            conn.owed.difference_update(args)
            self._notify()
            await conn.send(reply)
        else:
            failure = f"error:unknown op {op}"
            await conn.send({**reply, "success": False, "ret_msg": failure})

    def _topic_symbol(self, topic: str) -> str | None:
        kind, _, symbol = topic.partition(".")
        return symbol if kind == "tickers" and symbol in self.tickers else None

    async def _send_snapshot(self, conn: StreamConnection, topic: str) -> None:
        """Send ``topic``'s snapshot, or owe it while pushes are paused: like Bybit, a topic's
        first message on a connection is always its snapshot (pybit relies on that)."""
        async with conn.lock:
            if self._pushes_paused:
                conn.owed.add(topic)
            else:
                symbol = topic.partition(".")[2]
                data = {**self.tickers[symbol].to_bybit(), "tickDirection": "ZeroPlusTick"}
                if not await conn.write(self._stream_message(topic, "snapshot", data)):
                    return
                conn.owed.discard(topic)
                conn.topics.add(topic)
        self._notify()

    async def _push(self, topic: str, kind: str, data: dict[str, str]) -> None:
        if self._pushes_paused:
            return
        message = self._stream_message(topic, kind, data)
        for conn in list(self._public - self._stalled):
            if topic in conn.owed:
                await self._send_snapshot(conn, topic)
            elif topic in conn.topics:
                await conn.send(message)

    def _stream_message(self, topic: str, kind: str, data: dict[str, str]) -> dict[str, Any]:
        self._sequence += 1
        ts = self._server_ms()
        return {"topic": topic, "type": kind, "data": data, "cs": self._sequence, "ts": ts}
