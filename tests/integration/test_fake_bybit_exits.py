"""Exits Bybit makes itself (liquidation, ADL, delivery), a stop-loss removed by hand and put
back through ``trading-stop``, pushes lost on a live connection, and a private login refused
for an expiry that is not after the server's clock; shown with the real pybit client."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from pybit.unified_trading import HTTP

from tests.fakes.bybit import FakeBybit
from tests.fakes.bybit.pybit_clients import (
    BTC,
    StreamFactory,
    call,
    fake,
    market_order,
    refused,
    rest,
    result,
    socket_thread_ended,
    streams,
)

pytestmark = pytest.mark.timeout(15)
__all__ = ["fake", "rest", "streams"]  # fixtures

FEE = Decimal("0.00055")
STOP = {**BTC, "tpslMode": "Full", "positionIdx": 0}


async def long_with_stops(session: HTTP) -> None:
    """0.010 BTCUSDT long at the ask, 65000.1, with SL 64000 and TP 66000."""
    await call(session, "place_order", **market_order(stopLoss="64000", takeProfit="66000"))


# -- liquidation, ADL, delivery ----------------------------------------------------------------


async def test_a_liquidation_takes_over_the_whole_position_as_a_bust_trade(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams()
    session = rest()
    await long_with_stops(session)

    await fake.liquidate("BTCUSDT", price="59000")

    await pushes.until(lambda: len(pushes.data("wallet")) == 2)
    bust = pushes.data("execution")[-1]
    assert (bust["execType"], bust["createType"], bust["orderLinkId"]) == (
        "BustTrade",
        "CreateByTakeOver_PassThrough",
        "",
    )
    assert (bust["side"], bust["execQty"], bust["execPrice"], bust["closedSize"]) == (
        "Sell",
        "0.010",
        "59000.00",
        "0.010",
    )
    assert Decimal(bust["execFee"]) == Decimal("0.010") * 59000 * FEE  # the taker fee
    assert pushes.data("position")[-1]["size"] == "0"
    [record] = (await result(session, "get_closed_pnl", **BTC))["list"]
    assert (record["execType"], record["orderId"]) == ("BustTrade", bust["orderId"])
    [order] = (await result(session, "get_order_history", **BTC, orderId=bust["orderId"]))["list"]
    assert (order["orderStatus"], order["orderType"], order["orderLinkId"]) == (
        "Filled",
        "Market",
        "",
    )
    stops = [o for o in fake.orders if o.stop_order_type]
    assert {(o.status, o.cancel_type) for o in stops} == {("Deactivated", "CancelByTpSlTsClear")}


async def test_a_laddered_liquidation_shrinks_the_position_and_leaves_it_open(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    await long_with_stops(session)

    await fake.liquidate("BTCUSDT", qty="0.004", price="60000")

    [execution, _] = (await result(session, "get_executions", **BTC))["list"]
    assert (execution["createType"], execution["execQty"], execution["orderLinkId"]) == (
        "CreateByLiq",
        "0.004",
        "",
    )
    [position] = (await result(session, "get_positions", **BTC))["list"]
    assert (position["size"], position["stopLoss"]) == ("0.006", "64000.00")
    [record] = (await result(session, "get_closed_pnl", **BTC))["list"]
    assert record["closedSize"] == "0.004"
    assert {o.qty for o in fake.orders if o.stop_order_type and o.is_open} == {Decimal("0.006")}


async def test_auto_deleveraging_is_an_adl_trade_without_a_fee(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    await long_with_stops(session)
    wallet = fake.wallet_balance

    await fake.auto_deleverage("BTCUSDT", price="65500")

    [adl, _] = (await result(session, "get_executions", **BTC))["list"]
    assert (adl["execType"], adl["createType"], adl["orderPrice"]) == (
        "AdlTrade",
        "CreateByAdl_PassThrough",
        "0",
    )
    assert (adl["execFee"], adl["feeRate"]) == ("0", "0")
    [record] = (await result(session, "get_closed_pnl", **BTC))["list"]
    assert record["execType"] == "AdlTrade"
    gain = (Decimal("65500") - Decimal("65000.1")) * Decimal("0.010")
    assert fake.wallet_balance == wallet + gain
    assert fake.positions == {}


async def test_a_delivery_closes_the_position_with_a_trade_and_no_order(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams()
    session = rest()
    await long_with_stops(session)
    orders_before = len(fake.orders)

    await fake.deliver("BTCUSDT", price="65200")

    await pushes.until(lambda: len(pushes.data("wallet")) == 2)
    delivery = pushes.data("execution")[-1]
    assert (delivery["execType"], delivery["createType"], delivery["orderType"]) == (
        "Delivery",
        "CreateBySettle",
        "UNKNOWN",
    )
    assert delivery["orderId"] not in {o["orderId"] for o in pushes.data("order")}
    history = (await result(session, "get_order_history", **BTC))["list"]
    assert delivery["orderId"] not in {o["orderId"] for o in history}
    assert len(fake.orders) == orders_before
    [record] = (await result(session, "get_closed_pnl", **BTC))["list"]
    assert (record["execType"], record["orderId"]) == ("Delivery", delivery["orderId"])
    assert fake.positions == {}


# -- a stop-loss removed by hand, and put back -------------------------------------------------


async def test_a_stop_loss_removed_in_the_app_can_be_put_back_by_trading_stop(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams(topics=("order", "position"))
    session = rest()
    await long_with_stops(session)

    await fake.remove_stop_loss("BTCUSDT")

    await pushes.until(lambda: any(p["stopLoss"] == "0" for p in pushes.data("position")))
    removed = [o for o in pushes.data("order") if o["stopOrderType"] == "StopLoss"][-1]
    assert (removed["orderStatus"], removed["cancelType"]) == ("Deactivated", "CancelByUser")
    [position] = (await result(session, "get_positions", **BTC))["list"]
    assert (position["stopLoss"], position["takeProfit"]) == ("0", "66000.00")

    no_mode = await refused(session, "set_trading_stop", **BTC, positionIdx=0, stopLoss="64000")
    wrong_side = await refused(session, "set_trading_stop", **STOP, stopLoss="65500")
    fake.fail_next("/v5/position/trading-stop", ret_code=10016, ret_msg="Internal server error")
    failed = await refused(session, "set_trading_stop", **STOP, stopLoss="64000")
    await call(session, "set_trading_stop", **STOP, stopLoss="64000", slTriggerBy="MarkPrice")
    again = await refused(session, "set_trading_stop", **STOP, stopLoss="64000")

    assert (no_mode.status_code, wrong_side.status_code, failed.status_code) == (
        10001,
        10001,
        10016,
    )
    assert "tpslMode" in no_mode.message
    assert again.status_code == 34040
    [position] = (await result(session, "get_positions", **BTC))["list"]
    assert position["stopLoss"] == "64000.00"
    [stop] = [o for o in fake.orders if o.stop_order_type == "StopLoss" and o.is_open]
    assert (stop.status, stop.trigger_price, stop.trigger_by) == (
        "Untriggered",
        Decimal(64000),
        "MarkPrice",
    )


# -- pushes lost on a live connection ----------------------------------------------------------


async def test_dropped_pushes_are_lost_while_the_connection_stays_up(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    stream, pushes = await streams(topics=("execution",))
    session = rest()
    fake.drop_private_pushes(count=3)  # the first order: New, its execution, Filled

    await call(session, "place_order", **market_order(orderLinkId="lost"))
    await call(session, "place_order", **market_order(orderLinkId="heard"))
    await pushes.until(lambda: len(pushes.data("execution")) == 1)

    assert [e["orderLinkId"] for e in pushes.data("execution")] == ["heard"]
    assert fake.private_pushes_dropped == 3
    assert stream.is_connected()
    assert fake.authenticated_private_connections() == 1
    assert fake.private_connections == 1

    fake.drop_private_pushes()  # every push, until stopped
    await call(session, "place_order", **market_order(orderLinkId="lost-too"))
    fake.stop_dropping_private_pushes()
    await call(session, "place_order", **market_order(orderLinkId="heard-too"))
    await pushes.until(lambda: len(pushes.data("execution")) == 2)
    assert [e["orderLinkId"] for e in pushes.data("execution")] == ["heard", "heard-too"]


# -- the private login and the server's clock --------------------------------------------------


async def test_a_login_whose_expiry_is_not_after_the_servers_clock_is_refused(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    # Our clock 2 s behind Bybit's: pybit's login expires 1 s after our clock, already past
    # for the server. REST still works: the timestamp is within the 5 s recv_window.
    fake.set_clock_offset(2000)

    stream, _ = await streams(topics=())
    assert await socket_thread_ended(stream)
    [reply] = [m for m in fake.ws_messages if m.message.get("op") == "auth"]
    expires = int(reply.message["args"][1])
    assert expires <= fake.server_time_ms()
    assert fake.authenticated_private_connections() == 0
    assert (await call(rest(), "get_wallet_balance", accountType="UNIFIED"))["retCode"] == 0

    # An expiry that allows for the offset logs in.
    allowed, pushes = await streams(topics=("execution",), private_auth_expire=5)
    await call(rest(), "place_order", **market_order(orderLinkId="after-login"))
    await pushes.until(lambda: len(pushes.data("execution")) == 1)
    assert allowed.is_connected()
