"""The fake Bybit behaves like the real one where issue 9 found the two apart, shown with the
real pybit client: a delay on every REST answer, cursor paging with Bybit's limits, position
times, partial fills, position mode per symbol, borrowing, key rights, and USDC perpetuals and
dated futures under ``linear``."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from pybit.unified_trading import HTTP

from tests.fakes.bybit import DATED_FUTURE, PERMISSION_GROUPS, USDC_PERPETUAL, FakeBybit
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
USDT = {"category": "linear", "settleCoin": "USDT"}


def seed_symbols(fake: FakeBybit, count: int) -> list[str]:
    symbols = [f"C{n:02d}USDT" for n in range(count)]
    for symbol in symbols:
        fake.seed_instrument(symbol, "0.01", "1", "1", price="10")
    return symbols


# -- a round trip on every REST answer -------------------------------------------------------


async def test_every_rest_answer_waits_the_rest_delay(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    fake.set_rest_delay(0.2)
    mark = len(fake.requests)

    started = time.monotonic()
    await call(session, "get_server_time")
    await call(session, "get_wallet_balance", accountType="UNIFIED")
    delayed = time.monotonic() - started

    assert delayed >= 0.4  # public and private alike
    assert [r.path for r in fake.rest_calls(since=mark)] == [
        "/v5/market/time",
        "/v5/account/wallet-balance",
    ]
    assert len(fake.rest_calls("/v5/market/time")) == 1
    assert all(r.at > 0 for r in fake.rest_calls())


async def test_the_rest_delay_can_be_given_at_construction() -> None:
    async with FakeBybit(rest_delay=0.15) as fake:
        session = HTTP(testnet=False)
        session.endpoint = fake.url
        started = time.monotonic()
        await call(session, "get_server_time")
        session.client.close()

    assert time.monotonic() - started >= 0.15


# -- paging ------------------------------------------------------------------------------------


async def test_positions_come_twenty_a_page_with_a_cursor(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    symbols = seed_symbols(fake, 25)
    for symbol in symbols:
        await fake.open_position(symbol, "Buy", "1", "10")
    session = rest()

    first = await result(session, "get_positions", **USDT)
    await fake.close_by_hand(symbols[3])  # gone between two pages: nothing else moves
    second = await result(session, "get_positions", **USDT, cursor=first["nextPageCursor"])
    big = await result(session, "get_positions", **USDT, limit=200)
    too_big = await refused(session, "get_positions", **USDT, limit=201)

    assert len(first["list"]) == 20
    assert first["nextPageCursor"] != ""
    assert [row["symbol"] for row in second["list"]] == symbols[20:]
    assert second["nextPageCursor"] == ""
    assert len(big["list"]) == 24
    assert big["nextPageCursor"] == ""
    assert too_big.status_code == 10001


async def test_orders_executions_and_closed_pnl_are_paged_newest_first(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.set_wallet("100000")
    for n in range(55):
        side = "Buy" if n % 2 == 0 else "Sell"
        fake.account.place_order(market_order(side, "0.001", orderLinkId=f"o{n}"))
    session = rest()

    pages = []
    cursor = ""
    while True:
        page = await result(session, "get_order_history", **BTC, cursor=cursor)
        pages.append([o["orderLinkId"] for o in page["list"]])
        cursor = page["nextPageCursor"]
        if not cursor:
            break
    executions = await result(session, "get_executions", **BTC)
    rest_of_executions = await result(
        session, "get_executions", **BTC, cursor=executions["nextPageCursor"]
    )
    closed = await result(session, "get_closed_pnl", **BTC, limit=100)

    assert [len(p) for p in pages] == [20, 20, 15]
    assert pages[0][0] == "o54"
    assert [name for p in pages for name in p] == [f"o{n}" for n in reversed(range(55))]
    assert (await refused(session, "get_order_history", **BTC, limit=51)).status_code == 10001
    assert len(executions["list"]) == 50
    assert len(rest_of_executions["list"]) == 5
    assert rest_of_executions["nextPageCursor"] == ""
    assert len(closed["list"]) == 27  # every second order closed the one before
    assert (await refused(session, "get_executions", **BTC, limit=101)).status_code == 10001
    assert (await refused(session, "get_closed_pnl", **BTC, limit=101)).status_code == 10001


async def test_instruments_are_paged_by_a_limit_of_up_to_1000(fake: FakeBybit) -> None:
    session = HTTP(testnet=False)
    session.endpoint = fake.url
    everything = await result(session, "get_instruments_info", category="linear")
    first = await result(session, "get_instruments_info", category="linear", limit=5)
    names = [row["symbol"] for row in first["list"]]
    cursor = first["nextPageCursor"]
    while cursor:
        page = await result(
            session, "get_instruments_info", category="linear", limit=5, cursor=cursor
        )
        names += [row["symbol"] for row in page["list"]]
        cursor = page["nextPageCursor"]
    too_big = await refused(session, "get_instruments_info", category="linear", limit=1001)
    session.client.close()

    assert everything["nextPageCursor"] == ""  # 500 a page by default
    assert sorted(names) == sorted(row["symbol"] for row in everything["list"])
    assert len(names) == len(fake.instruments)
    assert too_big.status_code == 10001


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


# -- borrowing, key rights, what "linear" lists ------------------------------------------------


async def test_borrowing_shows_in_the_wallet_but_not_in_equity(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.set_borrow("200")

    [account] = (await result(rest(), "get_wallet_balance", accountType="UNIFIED"))["list"]

    [usdt] = account["coin"]
    assert (usdt["walletBalance"], usdt["borrowAmount"], usdt["spotBorrow"]) == (
        "1200",
        "200",
        "200",
    )
    assert usdt["equity"] == "1000"  # net of what is owed
    assert (account["totalEquity"], account["totalWalletBalance"]) == ("1000", "1200")


async def test_a_key_can_hold_every_permission_group_bybit_lists(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.add_api_key(
        "wide",
        "s3",
        transfer=True,
        sub_member_transfer_list=True,
        permissions={
            "FiatP2P": ["FiatP2POrder", "Advertising"],
            "FiatBitPay": ["FaitPayOrder"],
            "BitCard": ["BitCard"],
            "Earn": ["Earn"],
            "Exchange": ["ExchangeHistory"],
        },
    )

    info = await result(rest("wide", "s3"), "get_api_key_information")

    rights = info["permissions"]
    assert set(rights) == set(PERMISSION_GROUPS)
    assert rights["Wallet"] == ["AccountTransfer", "SubMemberTransfer", "SubMemberTransferList"]
    assert rights["FiatP2P"] == ["FiatP2POrder", "Advertising"]
    assert (rights["FiatBitPay"], rights["BitCard"]) == (["FaitPayOrder"], ["BitCard"])
    assert (rights["Earn"], rights["Exchange"]) == (["Earn"], ["ExchangeHistory"])
    assert rights["ContractTrade"] == ["Order", "Position"]


async def test_linear_also_lists_usdc_perpetuals_and_dated_futures(fake: FakeBybit) -> None:
    fake.seed_instrument("ETHPERP", "0.01", "0.01", "0.01", settle_coin="USDC", price="3401")
    session = HTTP(testnet=False)
    session.endpoint = fake.url
    rows = {
        row["symbol"]: row
        for row in (await result(session, "get_instruments_info", category="linear"))["list"]
    }
    tickers = {
        row["symbol"]: row
        for row in (await result(session, "get_tickers", category="linear"))["list"]
    }
    session.client.close()

    kinds = {
        symbol: (r["contractType"], r["settleCoin"], r["quoteCoin"], r["baseCoin"])
        for symbol, r in rows.items()
    }
    assert kinds["BTCUSDT"] == ("LinearPerpetual", "USDT", "USDT", "BTC")
    assert kinds[USDC_PERPETUAL] == ("LinearPerpetual", "USDC", "USDC", "BTC")
    assert kinds["ETHPERP"] == ("LinearPerpetual", "USDC", "USDC", "ETH")
    assert kinds[DATED_FUTURE] == ("LinearFutures", "USDT", "USDT", "BTC")
    assert rows[DATED_FUTURE]["deliveryTime"] != "0"
    assert rows["BTCUSDT"]["deliveryTime"] == "0"
    assert {USDC_PERPETUAL, DATED_FUTURE, "ETHPERP"} <= set(tickers)
    assert tickers[DATED_FUTURE]["deliveryTime"] == rows[DATED_FUTURE]["deliveryTime"]
