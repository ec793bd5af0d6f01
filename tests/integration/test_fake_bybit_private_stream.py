"""The fake Bybit's private stream, driven by the real pybit client: the pushes of an
exchange-side TP, pushes lost while the stream is down or paused, pybit's reconnect and
its refused login, and the stream's protocol."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from pybit.unified_trading import HTTP

from tests.fakes.bybit import FakeBybit, ws_signature
from tests.fakes.bybit.pybit_clients import (
    BTC,
    KEY,
    SECRET,
    StreamFactory,
    call,
    fake,
    market_order,
    rest,
    socket_thread_ended,
    streams,
)

pytestmark = pytest.mark.timeout(15)
__all__ = ["fake", "rest", "streams"]  # fixtures

FEE = Decimal("0.00055")


async def test_the_last_price_crossing_the_tp_closes_the_position_and_pushes_it_all(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams()
    session = rest()
    await call(session, "place_order", **market_order(stopLoss="64000", takeProfit="66000"))
    # A fill's pushes: execution, order, position, the TP/SL orders, and the wallet last.
    await pushes.until(lambda: len(pushes.data("wallet")) == 1)

    await fake.set_ticker("BTCUSDT", "66000")  # bid 65999.9

    await pushes.until(lambda: len(pushes.data("wallet")) == 2)
    [record] = (await call(session, "get_closed_pnl", **BTC))["result"]["list"]
    entry, exit_, qty = Decimal("65000.1"), Decimal("65999.9"), Decimal("0.010")
    net = (exit_ - entry) * qty - entry * qty * FEE - exit_ * qty * FEE
    assert Decimal(record["closedPnl"]) == net
    assert record["avgExitPrice"] == "65999.9"

    closing = pushes.data("execution")[-1]
    assert (closing["side"], closing["execPrice"], closing["closedSize"]) == (
        "Sell",
        "65999.90",
        "0.010",
    )
    assert (closing["stopOrderType"], closing["orderLinkId"]) == ("TakeProfit", "")
    assert Decimal(closing["execFee"]) == exit_ * qty * FEE
    assert closing["orderId"] == record["orderId"]
    tp_order = [o for o in pushes.data("order") if o["orderStatus"] == "Filled"][-1]
    assert (tp_order["orderType"], tp_order["stopOrderType"]) == ("Market", "TakeProfit")
    assert Decimal(tp_order["closedPnl"]) == net
    assert pushes.data("position")[-1]["side"] == ""
    sl_orders = [o for o in pushes.data("order") if o["stopOrderType"] == "StopLoss"]
    assert sl_orders[-1]["orderStatus"] == "Deactivated"
    assert Decimal(pushes.data("wallet")[-1]["totalWalletBalance"]) == Decimal(1000) + net
    message = pushes.messages[-1]
    assert set(message) == {"id", "topic", "creationTime", "data"}


async def test_fills_missed_while_the_private_stream_is_down_are_found_by_rest(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    stream, pushes = await streams()
    pushed_before = len(fake.private_pushes)

    await fake.drop_private_streams()
    assert await socket_thread_ended(stream)
    assert not stream.is_connected()
    await call(rest(), "place_order", **market_order(orderLinkId="while-down"))

    assert len(fake.private_pushes) == pushed_before  # nobody was there to hear it
    assert pushes.messages == []
    # Reconciliation: REST has what the stream missed.
    [execution] = (await call(rest(), "get_executions", **BTC))["result"]["list"]
    assert execution["orderLinkId"] == "while-down"
    [position] = (await call(rest(), "get_positions", **BTC))["result"]["list"]
    assert position["size"] == "0.010"


async def test_paused_pushes_are_lost_not_delayed(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams(topics=("execution",))
    fake.pause_private_pushes()
    await call(rest(), "place_order", **market_order(orderLinkId="unheard"))
    fake.resume_private_pushes()

    await call(rest(), "place_order", **market_order(orderLinkId="heard"))

    await pushes.until(lambda: len(pushes.data("execution")) == 1)
    assert [e["orderLinkId"] for e in pushes.data("execution")] == ["heard"]


async def test_pybit_reconnects_a_dropped_private_stream_and_resubscribes(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    # What a live adapter inherits when it lets pybit restart: a close frame and a lost
    # connection both reconnect it; it authenticates afresh and resends its subscriptions.
    stream, pushes = await streams(topics=("execution",), restart_on_error=True)

    await fake.drop_private_streams(abrupt=True)
    await fake.wait_until(lambda: fake.private_connections == 2, timeout=3)
    await fake.wait_for_private_subscription("execution")
    await call(rest(), "place_order", **market_order(orderLinkId="after"))

    await pushes.until(lambda: len(pushes.data("execution")) == 1)
    assert stream.is_connected()
    auths = [m for m in fake.ws_messages if m.message.get("op") == "auth"]
    assert len(auths) == 2


async def test_a_private_stream_with_a_wrong_secret_is_refused_and_pybit_gives_up(
    fake: FakeBybit, streams: StreamFactory
) -> None:
    # pybit raises on its socket thread when auth fails: the stream is dead for good, even with
    # restart_on_error (and a subscribe() after that would wait forever for a connection).
    stream, _ = await streams(secret="wrong", topics=(), restart_on_error=True)

    assert await socket_thread_ended(stream)
    assert stream.exited

    assert [m.message["op"] for m in fake.ws_messages] == ["auth"]
    assert fake.authenticated_private_connections() == 0
    assert not stream.auth
    assert fake.private_connections == 1  # no reconnect


async def test_private_stream_protocol_shapes(fake: FakeBybit) -> None:
    async def ask(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> Any:
        await ws.send_str(json.dumps(message))
        return json.loads(await ws.receive_str(timeout=2))

    async with aiohttp.ClientSession() as client, client.ws_connect(fake.ws_private_url) as ws:
        early = await ask(ws, {"op": "subscribe", "req_id": "1", "args": ["order"]})
        expires = fake.server_time_ms() - 1
        expired = await ask(
            ws, {"op": "auth", "args": [KEY, expires, ws_signature(SECRET, expires)]}
        )
        expires = fake.server_time_ms() + 1000
        forged = await ask(ws, {"op": "auth", "args": [KEY, expires, ws_signature("x", expires)]})
        good = await ask(ws, {"op": "auth", "args": [KEY, expires, ws_signature(SECRET, expires)]})
        pong = await ask(ws, {"op": "ping", "req_id": "p1"})
        unknown = await ask(ws, {"op": "subscribe", "req_id": "2", "args": ["greeks.x"]})
        subscribed = await ask(ws, {"op": "subscribe", "req_id": "3", "args": ["order"]})

    assert (early["op"], early["success"]) == ("subscribe", False)
    assert (expired["op"], expired["success"], expired["ret_msg"]) == (
        "auth",
        False,
        "Params Error",
    )
    assert (forged["success"], good["success"]) == (False, True)
    assert set(good) == {"success", "ret_msg", "op", "conn_id"}
    assert (pong["op"], pong["req_id"]) == ("pong", "p1")
    assert unknown["success"] is False
    assert subscribed == {**subscribed, "success": True, "op": "subscribe", "req_id": "3"}
