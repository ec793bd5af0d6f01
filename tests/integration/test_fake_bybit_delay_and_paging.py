"""The fake Bybit answers REST as the real one does, shown with the real pybit client: a
delay on every answer (a network round trip), and lists a page at a time under a cursor,
with Bybit's limits on each."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from pybit.unified_trading import HTTP

from tests.fakes.bybit import FakeBybit
from tests.fakes.bybit.pybit_clients import BTC, call, fake, market_order, refused, rest, result

pytestmark = pytest.mark.timeout(15)
__all__ = ["fake", "rest"]  # fixtures

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
