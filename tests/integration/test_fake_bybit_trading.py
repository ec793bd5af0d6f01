"""The fake Bybit's trading endpoints, driven by the real pybit client: leverage, market
orders with TP/SL, the orders Bybit refuses, trading-stop, closes and their PnL, position
mode; plus the fault injection on orders a live adapter will be tested with."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import requests
from pybit.exceptions import FailedRequestError
from pybit.unified_trading import HTTP

from tests.fakes.bybit import FakeBybit
from tests.fakes.bybit.pybit_clients import BTC, call, fake, market_order, refused, rest

pytestmark = pytest.mark.timeout(15)
__all__ = ["fake", "rest"]  # fixtures

CREATE = "/v5/order/create"
FEE = Decimal("0.00055")


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
