"""The fake Bybit's positions as the real one keeps them, shown with the real pybit
client: a position's times, orders that fill in part, and position mode per symbol."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from pybit.unified_trading import HTTP

from tests.fakes.bybit import USDC_PERPETUAL, FakeBybit
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


# -- position times ----------------------------------------------------------------------------


async def test_created_time_is_the_first_position_ever_and_open_time_the_current(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams(topics=("position",))
    session = rest()
    await call(session, "place_order", **market_order())
    [first] = (await result(session, "get_positions", **BTC))["list"]
    await call(session, "place_order", **market_order("Sell", reduceOnly=True))
    [flat] = (await result(session, "get_positions", **BTC))["list"]
    fake.set_clock_offset(2000)  # two seconds on, within pybit's recv_window
    await call(session, "place_order", **market_order())
    [again] = (await result(session, "get_positions", **BTC))["list"]

    assert isinstance(first["openTime"], int)
    assert first["openTime"] == int(first["createdTime"])
    assert (flat["side"], flat["openTime"], flat["createdTime"]) == ("", 0, first["createdTime"])
    assert again["createdTime"] == first["createdTime"]  # first ever, across close and reopen
    assert again["openTime"] >= first["openTime"] + 2000
    assert int(again["updatedTime"]) >= again["openTime"]
    await pushes.until(lambda: len(pushes.data("position")) >= 3)
    assert pushes.data("position")[-1]["openTime"] == again["openTime"]
    assert pushes.data("position")[-1]["createdTime"] == first["createdTime"]


async def test_a_symbol_never_traded_has_seq_minus_one_and_no_open_time(
    rest: Callable[..., HTTP],
) -> None:
    [row] = (await result(rest(), "get_positions", category="linear", symbol="ETHUSDT"))["list"]

    assert (row["size"], row["side"], row["seq"], row["openTime"]) == ("0", "", -1, 0)
    assert (row["stopLoss"], row["takeProfit"]) == ("", "")  # recorded flat rows say ""


# -- partial fills -----------------------------------------------------------------------------


async def test_an_entry_that_fills_in_part_books_what_filled(
    fake: FakeBybit, rest: Callable[..., HTTP], streams: StreamFactory
) -> None:
    _, pushes = await streams()
    fake.partial_fill_next("0.004")
    session = rest()

    placed = await result(
        session, "place_order", **market_order(orderLinkId="e1", stopLoss="64000")
    )

    [order] = (await result(session, "get_open_orders", category="linear", orderLinkId="e1"))[
        "list"
    ]
    assert (order["orderStatus"], order["qty"], order["cumExecQty"]) == (
        "Cancelled",
        "0.010",
        "0.004",
    )
    assert (order["leavesQty"], order["leavesValue"]) == ("0.000", "0")
    [execution] = (await result(session, "get_executions", **BTC))["list"]
    assert (execution["orderId"], execution["execQty"]) == (placed["orderId"], "0.004")
    assert execution["leavesQty"] == "0.006"  # the order was live when this fill came
    [position] = (await result(session, "get_positions", **BTC))["list"]
    assert (position["size"], position["stopLoss"]) == ("0.004", "64000.00")
    [stop] = [o for o in fake.orders if o.stop_order_type == "StopLoss"]
    assert stop.qty == Decimal("0.004")
    fee = Decimal("0.004") * Decimal("65000.1") * FEE
    assert fake.wallet_balance == Decimal(1000) - fee
    await pushes.until(lambda: len(pushes.data("wallet")) == 1)
    final = [o for o in pushes.data("order") if o["orderLinkId"] == "e1"][-1]
    assert (final["orderStatus"], final["cumExecQty"], final["leavesQty"]) == (
        "Cancelled",
        "0.004",
        "0.000",
    )


async def test_a_reduce_only_close_that_fills_in_part_leaves_the_rest_with_its_stop(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    await call(session, "place_order", **market_order(stopLoss="64000", takeProfit="66000"))
    fake.partial_fill_next("0.004", symbol="BTCUSDT", status="PartiallyFilledCanceled")

    await call(session, "place_order", **market_order("Sell", reduceOnly=True, orderLinkId="c1"))

    [position] = (await result(session, "get_positions", **BTC))["list"]
    assert (position["size"], position["stopLoss"], position["takeProfit"]) == (
        "0.006",
        "64000.00",
        "66000.00",
    )
    [record] = (await result(session, "get_closed_pnl", **BTC))["list"]
    assert (record["closedSize"], record["qty"], record["execType"]) == ("0.004", "0.010", "Trade")
    entry, exit_ = Decimal("65000.1"), Decimal("64999.9")
    open_fee = Decimal("0.004") * entry * FEE
    close_fee = Decimal("0.004") * exit_ * FEE
    assert Decimal(record["closedPnl"]) == (exit_ - entry) * Decimal("0.004") - open_fee - close_fee
    closing = fake.order("c1")
    assert closing is not None
    assert closing.status == "PartiallyFilledCanceled"
    live = [o for o in fake.orders if o.stop_order_type and o.is_open]
    assert {(o.stop_order_type, o.qty) for o in live} == {
        ("StopLoss", Decimal("0.006")),
        ("TakeProfit", Decimal("0.006")),
    }


async def test_an_order_that_fills_nothing_changes_nothing_and_other_symbols_fill(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    fake.partial_fill_next("0", symbol="ETHUSDT")

    await call(session, "place_order", **market_order(orderLinkId="btc"))
    await call(
        session,
        "place_order",
        **market_order(symbol="ETHUSDT", qty="0.10", orderLinkId="eth"),
    )

    btc, eth = fake.order("btc"), fake.order("eth")
    assert btc is not None
    assert eth is not None
    assert (btc.status, btc.cum_exec_qty) == ("Filled", Decimal("0.010"))
    assert (eth.status, eth.cum_exec_qty) == ("Cancelled", Decimal(0))
    assert fake.position("ETHUSDT") is None
    assert [e.order.order_link_id for e in fake.executions] == ["btc"]


# -- position mode per symbol ------------------------------------------------------------------


async def test_a_symbol_in_hedge_mode_lists_two_rows_and_refuses_position_idx_0(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.set_symbol_position_mode("ETHUSDT", hedge=True)
    session = rest()
    eth: dict[str, Any] = {"category": "linear", "symbol": "ETHUSDT"}

    rows = (await result(session, "get_positions", **eth))["list"]
    wrong_idx = await refused(session, "place_order", **market_order(**eth, qty="0.10"))

    assert [(row["positionIdx"], row["side"], row["size"]) for row in rows] == [
        (1, "", "0"),
        (2, "", "0"),
    ]
    assert (wrong_idx.status_code, wrong_idx.message) == (
        10001,
        "position idx not match position mode",
    )
    assert (await call(session, "place_order", **market_order()))["retCode"] == 0  # BTC: one-way


async def test_switching_by_coin_skips_symbols_with_their_own_mode_or_a_position(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    await call(session, "place_order", **market_order())  # BTCUSDT has a position
    fake.set_symbol_position_mode("SOLUSDT", hedge=False)  # its own setting

    await call(session, "switch_position_mode", category="linear", coin="USDT", mode=3)

    async def idx(symbol: str) -> list[int]:
        rows = (await result(session, "get_positions", category="linear", symbol=symbol))["list"]
        return [row["positionIdx"] for row in rows]

    assert await idx("XRPUSDT") == [1, 2]  # switched
    assert await idx("BTCUSDT") == [0]  # has a position: kept its mode
    assert await idx("SOLUSDT") == [0]  # set by symbol: kept its mode
    assert await idx(USDC_PERPETUAL) == [0]  # another settle coin
    busy = await refused(session, "switch_position_mode", **BTC, mode=3)
    assert busy.status_code == 110024
    # Flat again, BTCUSDT keeps the mode it had until switched by symbol.
    await fake.close_by_hand("BTCUSDT")
    assert (await call(session, "place_order", **market_order()))["retCode"] == 0
