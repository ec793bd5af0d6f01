"""The fake Bybit's private side, driven by the real pybit client: signed REST (auth errors,
permissions, leverage, market orders with TP/SL, fills, closed PnL) and the private stream
(auth, pushes, drops), plus the fault injection a live adapter will be tested with."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import requests
from pybit.exceptions import FailedRequestError
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
    refused,
    rest,
    socket_thread_ended,
    streams,
)

pytestmark = pytest.mark.timeout(15)
__all__ = ["fake", "rest", "streams"]  # fixtures

WALLET = "/v5/account/wallet-balance"
CREATE = "/v5/order/create"
FEE = Decimal("0.00055")


# -- signing ---------------------------------------------------------------------------------


async def test_a_request_signed_with_the_right_secret_is_served(
    rest: Callable[..., HTTP],
) -> None:
    response = await call(rest(), "get_wallet_balance", accountType="UNIFIED")

    assert response["retCode"] == 0
    [account] = response["result"]["list"]
    assert account["accountType"] == "UNIFIED"
    assert account["totalAvailableBalance"] == "1000"
    assert account["coin"][0]["coin"] == "USDT"
    assert account["coin"][0]["walletBalance"] == "1000"


async def test_a_wrong_secret_is_10004_and_an_unknown_key_10003(
    rest: Callable[..., HTTP],
) -> None:
    wrong_secret = await refused(rest(secret="not-the-secret"), "get_api_key_information")
    unknown_key = await refused(rest(key="nobody"), "get_api_key_information")

    assert wrong_secret.status_code == 10004
    assert wrong_secret.message.startswith("error sign!")
    assert SECRET not in wrong_secret.message
    assert unknown_key.status_code == 10003
    assert unknown_key.message == "API key is invalid."


async def test_a_stale_timestamp_is_10002_which_pybit_retries_with_a_wider_window(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    # The server's clock 6 s ahead: our timestamp is 6 s old, outside the 5 s recv_window.
    # pybit retries a 10002 itself, with 2.5 s more recv_window each time: the second passes.
    fake.set_clock_offset(6000)
    assert (await call(rest(), "get_wallet_balance", accountType="UNIFIED"))["retCode"] == 0
    windows = [r.headers["X-BAPI-RECV-WINDOW"] for r in fake.requests_to(WALLET)]
    assert windows == ["5000", "7500"]

    # Our clock 2 s ahead of the server's: no recv_window helps (at most 1 s ahead is allowed);
    # pybit gives up after its three attempts, or reports the 10002 if it is not to retry it.
    fake.set_clock_offset(-2000)
    with pytest.raises(FailedRequestError):
        await call(rest(), "get_wallet_balance", accountType="UNIFIED")
    stale = await refused(rest(retry_codes={10006}), "get_wallet_balance", accountType="UNIFIED")
    assert stale.status_code == 10002
    assert "please check your server timestamp or recv_window param" in stale.message
    assert len(fake.requests_to(WALLET)) == 2 + 3 + 1


async def test_query_api_reports_the_keys_permissions(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.add_api_key("reader", "s2", read_only=True, withdraw=True, transfer=True)

    trading = (await call(rest(), "get_api_key_information"))["result"]
    reader = (await call(rest("reader", "s2"), "get_api_key_information"))["result"]

    assert trading["apiKey"] == KEY
    assert trading["readOnly"] == 0
    assert trading["uta"] == 1
    assert trading["permissions"]["ContractTrade"] == ["Order", "Position"]
    assert trading["permissions"]["Wallet"] == []
    assert reader["readOnly"] == 1
    assert "Withdraw" in reader["permissions"]["Wallet"]
    assert "AccountTransfer" in reader["permissions"]["Wallet"]


async def test_a_read_only_key_reads_but_cannot_trade(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.add_api_key("reader", "s2", read_only=True)
    reader = rest("reader", "s2")

    positions = await call(reader, "get_positions", **BTC)
    denied = await refused(reader, "place_order", **market_order())

    assert positions["result"]["list"][0]["side"] == ""  # asked by symbol: listed, empty
    assert positions["result"]["list"][0]["size"] == "0"
    assert denied.status_code == 10005
    assert fake.orders == []


# -- trading ---------------------------------------------------------------------------------


async def test_setting_the_same_leverage_twice_is_110043(rest: Callable[..., HTTP]) -> None:
    session = rest()
    leverage = {**BTC, "buyLeverage": "25", "sellLeverage": "25"}

    assert (await call(session, "set_leverage", **leverage))["retCode"] == 0
    again = await refused(session, "set_leverage", **leverage)

    assert again.status_code == 110043
    assert again.message == "leverage not modified"
    position = (await call(session, "get_positions", **BTC))["result"]["list"][0]
    assert position["leverage"] == "25"


async def test_a_market_buy_fills_at_the_ask_with_its_sl_and_tp_on_the_position(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    order = market_order(orderLinkId="sig-1", stopLoss="64000", takeProfit="66000", tpslMode="Full")

    placed = (await call(session, "place_order", **order))["result"]

    assert placed["orderLinkId"] == "sig-1"
    [position] = (await call(session, "get_positions", category="linear", settleCoin="USDT"))[
        "result"
    ]["list"]
    assert position["symbol"] == "BTCUSDT"
    assert (position["side"], position["size"], position["positionIdx"]) == ("Buy", "0.010", 0)
    assert position["avgPrice"] == "65000.1"  # the ask
    assert (position["stopLoss"], position["takeProfit"]) == ("64000.00", "66000.00")
    assert position["tpslMode"] == "Full"
    fee = Decimal("0.010") * Decimal("65000.1") * FEE
    assert Decimal(position["cumRealisedPnl"]) == -fee
    assert fake.wallet_balance == Decimal(1000) - fee

    [filled] = (await call(session, "get_open_orders", category="linear", orderLinkId="sig-1"))[
        "result"
    ]["list"]
    assert filled["orderId"] == placed["orderId"]
    assert (filled["orderStatus"], filled["avgPrice"]) == ("Filled", "65000.1")
    assert Decimal(filled["cumExecFee"]) == fee
    [execution] = (await call(session, "get_executions", **BTC))["result"]["list"]
    assert (execution["execPrice"], execution["execQty"]) == ("65000.10", "0.010")
    assert Decimal(execution["execFee"]) == fee
    assert execution["closedSize"] == "0.000"
    # Bybit keeps the position's TP and SL as conditional orders, listed as open.
    open_orders = (await call(session, "get_open_orders", **BTC))["result"]["list"]
    assert {(o["stopOrderType"], o["orderStatus"], o["triggerPrice"]) for o in open_orders} == {
        ("TakeProfit", "Untriggered", "66000.00"),
        ("StopLoss", "Untriggered", "64000.00"),
    }


REFUSALS = {
    "qty off the step": (market_order(qty="0.0105"), 10001, "qtyStep"),
    "qty below the minimum": (market_order(qty="0.0001"), 10001, "minimum limit"),
    "long SL above the price": (market_order(stopLoss="65100"), 10001, "should lower than"),
    "short TP above the price": (market_order("Sell", takeProfit="65100"), 10001, "tp:"),
    "orderLinkId too long": (market_order(orderLinkId="x" * 37), 10001, "orderLinkId"),
    "orderLinkId with a dot": (market_order(orderLinkId="a.b"), 10001, "orderLinkId"),
    "margin and fee over the balance": (market_order(qty="1.600"), 110007, "ab not enough"),
    "reduce-only without a position": (market_order(reduceOnly=True), 110017, "position is zero"),
    "one-way mode but positionIdx 1": (market_order(positionIdx=1), 10001, "position idx"),
}


@pytest.mark.parametrize(("order", "code", "reason"), REFUSALS.values(), ids=REFUSALS.keys())
async def test_a_refused_order_changes_nothing(
    fake: FakeBybit, rest: Callable[..., HTTP], order: dict[str, Any], code: int, reason: str
) -> None:
    rejection = await refused(rest(), "place_order", **order)

    assert rejection.status_code == code
    assert reason in rejection.message
    assert (fake.orders, fake.positions, fake.wallet_balance) == ([], {}, Decimal(1000))


async def test_a_duplicate_order_link_id_is_110072(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    await call(session, "place_order", **market_order(orderLinkId="sig-1"))

    duplicate = await refused(session, "place_order", **market_order(orderLinkId="sig-1"))

    assert duplicate.status_code == 110072
    assert len(fake.orders) == 1
    assert fake.position("BTCUSDT") is not None
    assert fake.position("BTCUSDT").size == Decimal("0.010")


async def test_trading_stop_moves_the_stop_loss(fake: FakeBybit, rest: Callable[..., HTTP]) -> None:
    session = rest()
    stop = {**BTC, "tpslMode": "Full", "positionIdx": 0}
    no_position = await refused(session, "set_trading_stop", **stop, stopLoss="64000")
    await call(session, "place_order", **market_order(stopLoss="64000"))

    await call(session, "set_trading_stop", **stop, stopLoss="64500")
    unchanged = await refused(session, "set_trading_stop", **stop, stopLoss="64500")

    assert no_position.status_code == 10001
    assert unchanged.status_code == 34040
    assert fake.position("BTCUSDT").stop_loss == Decimal(64500)
    [stop] = [o for o in fake.orders if o.stop_order_type == "StopLoss" and o.is_open]
    assert stop.trigger_price == Decimal(64500)


async def test_a_reduce_only_close_realises_pnl_net_of_both_fees(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    await call(session, "place_order", **market_order(takeProfit="70000"))  # at the ask, 65000.1
    await fake.set_ticker("BTCUSDT", "65500")

    await call(session, "place_order", **market_order("Sell", reduceOnly=True, orderLinkId="x1"))

    [record] = (await call(session, "get_closed_pnl", **BTC))["result"]["list"]
    entry, exit_, qty = Decimal("65000.1"), Decimal("65499.9"), Decimal("0.010")
    open_fee, close_fee = entry * qty * FEE, exit_ * qty * FEE
    assert (record["side"], record["closedSize"], record["qty"]) == ("Sell", "0.010", "0.010")
    assert (record["avgEntryPrice"], record["avgExitPrice"]) == ("65000.1", "65499.9")
    assert Decimal(record["cumEntryValue"]) == entry * qty
    assert Decimal(record["cumExitValue"]) == exit_ * qty
    assert Decimal(record["closedPnl"]) == (exit_ - entry) * qty - open_fee - close_fee
    assert (Decimal(record["openFee"]), Decimal(record["closeFee"])) == (open_fee, close_fee)
    assert record["orderId"] == fake.order("x1").order_id
    assert fake.positions == {}
    assert fake.wallet_balance == Decimal(1000) + Decimal(record["closedPnl"])
    tp_orders = [o for o in fake.orders if o.stop_order_type == "TakeProfit"]
    assert [o.status for o in tp_orders] == ["Deactivated"]


async def test_switch_mode_reports_the_mode_and_refuses_an_unchanged_one(
    rest: Callable[..., HTTP],
) -> None:
    session = rest()

    await call(session, "switch_position_mode", **BTC, mode=3)  # hedge
    unchanged = await refused(session, "switch_position_mode", **BTC, mode=3)
    one_way_order = await refused(session, "place_order", **market_order())
    await call(session, "switch_position_mode", **BTC, mode=0)

    assert unchanged.status_code == 110025
    assert one_way_order.message == "position idx not match position mode"
    assert (await call(session, "place_order", **market_order()))["retCode"] == 0


async def test_a_position_opened_elsewhere_is_listed_and_its_stop_loss_triggers(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    await fake.open_position("ETHUSDT", "Sell", "0.50", "3400", stop_loss="3500", leverage="5")
    session = rest()

    [short] = (await call(session, "get_positions", category="linear", settleCoin="USDT"))[
        "result"
    ]["list"]
    [stop] = (await call(session, "get_open_orders", category="linear", symbol="ETHUSDT"))[
        "result"
    ]["list"]
    await fake.set_ticker("ETHUSDT", "3500")  # ask 3500.01

    assert (short["side"], short["size"], short["stopLoss"], short["leverage"]) == (
        "Sell",
        "0.50",
        "3500.00",
        "5",
    )
    assert (stop["stopOrderType"], stop["side"], stop["triggerDirection"]) == ("StopLoss", "Buy", 1)
    [record] = (await call(session, "get_closed_pnl", category="linear"))["result"]["list"]
    close_fee = Decimal("3500.01") * Decimal("0.50") * FEE
    assert (
        Decimal(record["closedPnl"])
        == (Decimal(3400) - Decimal("3500.01")) * Decimal("0.50") - close_fee
    )  # opened elsewhere: no entry fee here
    history = (await call(session, "get_order_history", category="linear"))["result"]["list"]
    assert [(o["stopOrderType"], o["orderStatus"]) for o in history] == [("StopLoss", "Filled")]
    assert fake.positions == {}


# -- the private stream and exchange-side TP/SL ------------------------------------------------


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


# -- fault injection -------------------------------------------------------------------------


async def test_an_accepted_order_whose_reply_times_out_is_found_by_order_link_id(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.accept_then_timeout(CREATE, delay=3.0)

    # pybit re-raises requests' timeout as is (unless force_retry, which would re-send).
    with pytest.raises(requests.exceptions.ReadTimeout):
        await call(rest(timeout=0.3), "place_order", **market_order(orderLinkId="sig-9"))

    [order] = (await call(rest(), "get_open_orders", category="linear", orderLinkId="sig-9"))[
        "result"
    ]["list"]
    assert (order["orderStatus"], order["cumExecQty"]) == ("Filled", "0.010")
    again = await refused(rest(), "place_order", **market_order(orderLinkId="sig-9"))
    assert again.status_code == 110072  # re-sending blindly is refused, and it is known why


async def test_injected_failures_are_not_processed(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.fail_next(CREATE, http_status=502, ret_msg="bad gateway")
    with pytest.raises(FailedRequestError) as gateway:
        await call(rest(), "place_order", **market_order())
    fake.fail_next(CREATE, ret_code=10016, ret_msg="Internal server error")
    server_error = await refused(rest(), "place_order", **market_order())
    assert fake.orders == []

    # pybit retries a rate limit (10006) itself, after X-Bapi-Limit-Reset-Timestamp.
    fake.fail_next(CREATE, ret_code=10006, ret_msg="Too many visits!")
    await call(rest(), "place_order", **market_order(orderLinkId="after-limit"))

    assert gateway.value.status_code == 502
    assert server_error.status_code == 10016
    assert [o.order_link_id for o in fake.orders] == ["after-limit"]
    assert len(fake.requests_to(CREATE)) == 4
