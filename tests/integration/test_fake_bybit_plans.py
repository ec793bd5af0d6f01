"""Trade plans held by the fake Bybit, driven by the real pybit client: partial take-profits
(``tpslMode=Partial``) filling one after the other, the rest cancelled when the position
closes, a stop-loss moved after TP1, a trailing stop, and leverage capped at maxLeverage."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

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
    streams,
)

pytestmark = pytest.mark.timeout(15)
__all__ = ["fake", "rest", "streams"]  # fixtures

FEE = Decimal("0.00055")
ENTRY, QTY = Decimal("65000.1"), Decimal("0.010")  # a market buy of 0.010 fills at the ask
FULL = {**BTC, "tpslMode": "Full", "positionIdx": 0}
PARTIAL = {**BTC, "tpslMode": "Partial", "positionIdx": 0}


def partial_tp(price: str, size: str = "0.005", **extra: Any) -> dict[str, Any]:
    return {**PARTIAL, "takeProfit": price, "tpSize": size, **extra}


def net_pnl(exit_price: str, qty: str) -> Decimal:
    """A long's closed PnL from ENTRY: the move, less the entry fee pro rata and the exit fee."""
    closed = Decimal(qty)
    return (
        (Decimal(exit_price) - ENTRY) * closed
        - ENTRY * closed * FEE
        - (Decimal(exit_price) * closed * FEE)
    )


async def long_with_two_targets(session: HTTP) -> None:
    """0.010 BTCUSDT long with a Full SL at 64000 and partial TPs at 66000 and 67000."""
    await call(session, "place_order", **market_order(stopLoss="64000"))
    await call(session, "set_trading_stop", **partial_tp("66000"))
    await call(session, "set_trading_stop", **partial_tp("67000"))


# -- partial take-profits ----------------------------------------------------------------------


async def test_two_partial_take_profits_fill_one_after_the_other(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams()
    session = rest()
    await long_with_two_targets(session)

    listed = (await result(session, "get_open_orders", **BTC))["list"]
    partials = [o for o in listed if o["stopOrderType"] == "PartialTakeProfit"]
    assert {(o["triggerPrice"], o["qty"], o["tpslMode"], o["orderStatus"]) for o in partials} == {
        ("66000.00", "0.005", "Partial", "Untriggered"),
        ("67000.00", "0.005", "Partial", "Untriggered"),
    }
    assert {(o["createType"], o["side"], o["reduceOnly"]) for o in partials} == {
        ("CreateByPartialTakeProfit", "Sell", True)
    }
    [position] = (await result(session, "get_positions", **BTC))["list"]
    assert (position["takeProfit"], position["stopLoss"]) == ("0", "64000.00")  # Full only

    await fake.set_ticker("BTCUSDT", "66000")  # sells at the bid, 65999.9
    await pushes.until(lambda: any(p["size"] == "0.005" for p in pushes.data("position")))
    tp1 = pushes.data("execution")[-1]
    assert (tp1["stopOrderType"], tp1["createType"], tp1["execQty"], tp1["closedSize"]) == (
        "PartialTakeProfit",
        "CreateByPartialTakeProfit",
        "0.005",
        "0.005",
    )
    filled = [o for o in pushes.data("order") if o["orderId"] == tp1["orderId"]]
    assert [o["orderStatus"] for o in filled] == ["Untriggered", "Triggered", "Filled"]
    [stop] = [o for o in fake.stop_orders("BTCUSDT") if o.stop_order_type == "StopLoss"]
    assert stop.qty == Decimal("0.005")  # the Full SL follows the position

    await fake.set_ticker("BTCUSDT", "67000")
    await pushes.until(lambda: pushes.data("position")[-1]["size"] == "0")
    tp2 = pushes.data("execution")[-1]
    assert (tp2["stopOrderType"], tp2["execPrice"], tp2["closedSize"]) == (
        "PartialTakeProfit",
        "66999.90",
        "0.005",
    )
    records = (await result(session, "get_closed_pnl", **BTC))["list"]
    assert [(r["orderId"], r["closedSize"]) for r in records] == [
        (tp2["orderId"], "0.005"),
        (tp1["orderId"], "0.005"),
    ]
    assert [Decimal(r["closedPnl"]) for r in records] == [
        net_pnl("66999.9", "0.005"),
        net_pnl("65999.9", "0.005"),
    ]
    assert fake.wallet_balance == Decimal(1000) - ENTRY * QTY * FEE + sum(
        (Decimal(r["closedPnl"]) + Decimal(r["openFee"]) for r in records), Decimal(0)
    )
    assert (stop.status, stop.cancel_type) == ("Deactivated", "CancelByTpSlTsClear")
    assert fake.stop_orders("BTCUSDT") == []


async def test_the_partial_orders_left_are_cancelled_when_the_position_closes(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams(topics=("order", "position"))
    session = rest()
    await long_with_two_targets(session)
    await call(session, "set_trading_stop", **{**PARTIAL, "stopLoss": "64500", "slSize": "0.004"})
    ids = {o.order_id for o in fake.partial_orders("BTCUSDT")}
    assert len(ids) == 3

    await fake.close_by_hand("BTCUSDT")

    await pushes.until(
        lambda: (
            {o["orderId"] for o in pushes.data("order") if o["orderStatus"] == "Deactivated"} >= ids
        )
    )
    cancelled = [
        o for o in pushes.data("order") if o["orderId"] in ids and o["cancelType"] != "UNKNOWN"
    ]
    assert {(o["orderStatus"], o["cancelType"]) for o in cancelled} == {
        ("Deactivated", "CancelByTpSlTsClear")
    }
    assert (await result(session, "get_open_orders", **BTC))["list"] == []
    history = (await result(session, "get_order_history", **BTC, orderStatus="Deactivated"))["list"]
    assert {o["stopOrderType"] for o in history} == {
        "PartialTakeProfit",
        "PartialStopLoss",
        "StopLoss",
    }


async def test_a_smaller_position_shrinks_the_earliest_partial_orders_first(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    await long_with_two_targets(session)
    first, second = fake.partial_orders("BTCUSDT")

    await call(session, "place_order", **market_order("Sell", qty="0.004", reduceOnly=True))
    assert (first.qty, second.qty) == (Decimal("0.001"), Decimal("0.005"))
    await call(session, "place_order", **market_order("Sell", qty="0.003", reduceOnly=True))

    assert (first.status, first.cancel_type) == ("Deactivated", "CancelByReduceOnly")
    assert [o.qty for o in fake.partial_orders("BTCUSDT")] == [Decimal("0.003")]


async def test_a_partial_take_profit_and_stop_loss_set_together_cancel_each_other(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    # With the order: a pair for the qty filled (Bybit's tpslMode=Partial on create).
    order = market_order(tpslMode="Partial", takeProfit="66000", stopLoss="64000")
    await call(session, "place_order", **order)
    [tp, sl] = fake.partial_orders("BTCUSDT")
    assert (tp.stop_order_type, tp.qty, sl.stop_order_type, sl.qty) == (
        "PartialTakeProfit",
        QTY,
        "PartialStopLoss",
        QTY,
    )
    [position] = (await result(session, "get_positions", **BTC))["list"]
    assert (position["takeProfit"], position["stopLoss"]) == ("0", "0")

    await fake.set_ticker("BTCUSDT", "66000")

    assert tp.status == "Filled"
    assert (sl.status, sl.cancel_type) == ("Deactivated", "CancelByOCOSlCanceledByTpTriggered")
    assert fake.positions == {}


PARTIAL_REFUSALS = {
    "a price without its size": (partial_tp("66000", ""), 10001, "need to input in pairs"),
    "a size without its price": ({**PARTIAL, "tpSize": "0.005"}, 10001, "in pairs"),
    "sizes that differ": (
        partial_tp("66000", stopLoss="64000", slSize="0.004"),
        10001,
        "must be equal",
    ),
    "more than the position": (partial_tp("66000", "0.011"), 110058, "remaining position size"),
    "a size off the step": (partial_tp("66000", "0.0055"), 10001, "tpSize"),
    "a long's TP below the price": (partial_tp("64500"), 10001, "should greater"),
}


@pytest.mark.parametrize(
    ("request_", "code", "reason"), PARTIAL_REFUSALS.values(), ids=PARTIAL_REFUSALS.keys()
)
async def test_a_refused_partial_stop_changes_nothing(
    fake: FakeBybit,
    rest: Callable[..., HTTP],
    request_: dict[str, Any],
    code: int,
    reason: str,
) -> None:
    session = rest()
    await call(session, "place_order", **market_order())

    refusal = await refused(session, "set_trading_stop", **request_)

    assert (refusal.status_code, reason in refusal.message) == (code, True)
    assert fake.stop_orders("BTCUSDT") == []


async def test_partial_stops_are_limited_by_the_size_left_and_to_twenty(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    await call(session, "place_order", **market_order(qty="0.030"))
    await call(session, "set_trading_stop", **partial_tp("66000", "0.010"))

    over = await refused(session, "set_trading_stop", **partial_tp("67000", "0.021"))
    for step in range(19):
        await call(session, "set_trading_stop", **partial_tp(str(66001 + step), "0.001"))
    too_many = await refused(session, "set_trading_stop", **partial_tp("67000", "0.001"))
    stop_loss = {**PARTIAL, "stopLoss": "64000", "slSize": "0.030"}
    await call(session, "set_trading_stop", **stop_loss)  # SLs are counted apart from TPs

    assert over.status_code == 110058
    assert (too_many.status_code, too_many.message) == (
        110060,
        "Cannot have more than 20 TP/SLs under Partial tpSlMode",
    )
    assert len(fake.partial_orders("BTCUSDT", "PartialTakeProfit")) == 20
    assert len(fake.partial_orders("BTCUSDT", "PartialStopLoss")) == 1


# -- breakeven: the Full stop-loss moved after TP1 ---------------------------------------------


async def test_a_stop_loss_moved_to_the_entry_after_tp1_closes_the_rest(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams()
    session = rest()
    await long_with_two_targets(session)
    await fake.set_ticker("BTCUSDT", "66000")
    [tp2] = fake.partial_orders("BTCUSDT")

    await call(session, "set_trading_stop", **FULL, stopLoss="65000.1")
    [position] = (await result(session, "get_positions", **BTC))["list"]
    assert (position["size"], position["stopLoss"]) == ("0.005", "65000.10")
    await fake.set_ticker("BTCUSDT", "65000")  # falls through the moved stop: sells at 64999.9

    await pushes.until(lambda: pushes.data("position")[-1]["size"] == "0")
    rest_out = pushes.data("execution")[-1]
    assert (rest_out["stopOrderType"], rest_out["createType"], rest_out["execQty"]) == (
        "StopLoss",
        "CreateByStopLoss",
        "0.005",
    )
    [last_record, _] = (await result(session, "get_closed_pnl", **BTC))["list"]
    assert Decimal(last_record["closedPnl"]) == net_pnl("64999.9", "0.005")
    assert (tp2.status, tp2.cancel_type) == ("Deactivated", "CancelByTpSlTsClear")


# -- the trailing stop -------------------------------------------------------------------------


async def test_a_trailing_stop_activates_follows_the_price_and_closes_the_position(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams()
    session = rest()
    await call(session, "place_order", **market_order())

    await call(session, "set_trading_stop", **FULL, trailingStop="500", activePrice="66000")

    [position] = (await result(session, "get_positions", **BTC))["list"]
    assert position["trailingStop"] == "500.00"
    [trailing] = (await result(session, "get_open_orders", **BTC))["list"]
    assert (trailing["stopOrderType"], trailing["createType"], trailing["orderStatus"]) == (
        "TrailingStop",
        "CreateByTrailingStop",
        "Untriggered",
    )
    assert (trailing["triggerPrice"], trailing["qty"], trailing["triggerDirection"]) == (
        "66000.00",  # Bybit: a TrailingStop's triggerPrice is its activation price
        "0.010",
        2,
    )
    await fake.set_ticker("BTCUSDT", "64000")  # not active yet: no stop at all
    assert fake.trailing_stop_price("BTCUSDT") is None
    await fake.set_ticker("BTCUSDT", "66000")
    assert fake.trailing_stop_price("BTCUSDT") == Decimal(65500)
    await fake.set_ticker("BTCUSDT", "66800")
    await fake.set_ticker("BTCUSDT", "66400")  # falls back less than the distance
    assert fake.trailing_stop_price("BTCUSDT") == Decimal(66300)
    assert fake.position("BTCUSDT") is not None

    await fake.set_ticker("BTCUSDT", "66300")

    await pushes.until(lambda: pushes.data("position")[-1]["size"] == "0")
    out = pushes.data("execution")[-1]
    assert (out["stopOrderType"], out["createType"], out["execQty"], out["execPrice"]) == (
        "TrailingStop",
        "CreateByTrailingStop",
        "0.010",
        "66299.90",
    )
    [record] = (await result(session, "get_closed_pnl", **BTC))["list"]
    assert Decimal(record["closedPnl"]) == net_pnl("66299.9", "0.010")
    assert pushes.data("position")[-1]["trailingStop"] == "0"


async def test_a_trailing_stop_without_an_activation_price_trails_at_once_and_0_cancels_it(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    await call(session, "place_order", **market_order("Sell"))  # short at the bid, 64999.9

    await call(session, "set_trading_stop", **FULL, trailingStop="300")
    assert fake.trailing_stop_price("BTCUSDT") == Decimal(65300)
    await fake.set_ticker("BTCUSDT", "64000")
    assert fake.trailing_stop_price("BTCUSDT") == Decimal(64300)
    again = await refused(session, "set_trading_stop", **FULL, trailingStop="300")
    await call(session, "set_trading_stop", **FULL, trailingStop="0")

    assert again.status_code == 34040
    [position] = (await result(session, "get_positions", **BTC))["list"]
    assert position["trailingStop"] == "0"
    [order] = [o for o in fake.orders if o.stop_order_type == "TrailingStop"]
    assert order.status == "Deactivated"
    await fake.set_ticker("BTCUSDT", "64400")
    assert fake.position("BTCUSDT") is not None


# -- leverage capped at maxLeverage ------------------------------------------------------------


async def test_leverage_above_the_instruments_max_leverage_is_refused_with_110013(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    hype = {"category": "linear", "symbol": "HYPEUSDT"}
    fake.set_max_leverage("BTCUSDT", "12.50")

    [listed] = (await call(session, "get_instruments_info", **hype))["result"]["list"]
    over = await refused(session, "set_leverage", **hype, buyLeverage="50", sellLeverage="50")
    await call(session, "set_leverage", **hype, buyLeverage="25", sellLeverage="25")
    odd = await refused(session, "set_leverage", **BTC, buyLeverage="13", sellLeverage="13")

    assert listed["leverageFilter"]["maxLeverage"] == "25.00"
    assert (over.status_code, over.message) == (
        110013,
        "cannot set leverage [5000] gt maxLeverage [2500] by risk limit",
    )
    assert odd.message == "cannot set leverage [1300] gt maxLeverage [1250] by risk limit"
    [position] = (await result(session, "get_positions", **hype))["list"]
    assert position["leverage"] == "25"
