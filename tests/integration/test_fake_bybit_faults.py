"""Bans and limits as Bybit answers them, seen through the real pybit client: an IP ban (HTTP
403 "access too frequent" on every REST call, public or private, until it lifts), retCode -1
and 429 in an HTTP 200 envelope, and HTTP 429 with an empty body; each refused request is in
the fake's request log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest
from pybit.exceptions import FailedRequestError
from pybit.unified_trading import HTTP

from tests.fakes.bybit import BAN_BODY, FakeBybit
from tests.fakes.bybit.pybit_clients import call, fake, market_order, refused, rest, streams

pytestmark = pytest.mark.timeout(15)
__all__ = ["fake", "rest", "streams"]  # fixtures

CREATE = "/v5/order/create"
WALLET = "/v5/account/wallet-balance"


async def failed(session: HTTP, method: str, **params: object) -> FailedRequestError:
    with pytest.raises(FailedRequestError) as caught:
        await call(session, method, **params)
    return caught.value


async def test_a_banned_ip_gets_403_on_every_call_until_the_ban_is_lifted(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    session = rest()
    fake.ban_ip()

    private = await failed(session, "place_order", **market_order())
    public = await failed(session, "get_server_time")

    assert (private.status_code, public.status_code) == (403, 403)
    assert fake.orders == []  # refused unprocessed
    assert [r.path for r in fake.rest_calls()] == [CREATE, "/v5/market/time"]  # recorded
    assert fake.banned
    fake.lift_ban()
    assert (await call(session, "place_order", **market_order()))["retCode"] == 0


async def test_a_ban_for_some_seconds_lifts_by_itself(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.ban_ip(seconds=0.3)
    banned = await failed(rest(), "get_wallet_balance", accountType="UNIFIED")

    await fake.wait_until(lambda: not fake.banned, timeout=2)

    assert banned.status_code == 403
    assert (await call(rest(), "get_wallet_balance", accountType="UNIFIED"))["retCode"] == 0


async def test_the_ban_answer_is_bybits_text(fake: FakeBybit) -> None:
    fake.ban_ip()
    url = f"{fake.url}/v5/market/time"
    async with aiohttp.ClientSession() as client, client.get(url) as answer:
        status, text = answer.status, await answer.text()

    assert (status, text) == (403, BAN_BODY)
    assert "access too frequent" in BAN_BODY


async def test_ret_code_minus_one_and_429_come_in_an_http_200_envelope(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.fail_next(CREATE, ret_code=-1, ret_msg="request expired: o@0, now[] diff[]")
    expired = await refused(rest(), "place_order", **market_order())
    fake.fail_next(CREATE, ret_code=429, ret_msg="The trading service is experiencing a high load")
    loaded = await refused(rest(), "place_order", **market_order())
    # pybit retries a code it is told to (the product keeps its retry loop off for every code).
    fake.fail_next(CREATE, ret_code=-1, ret_msg="request expired")
    retried = await call(rest(retry_codes={-1}), "place_order", **market_order())

    assert (expired.status_code, loaded.status_code) == (-1, 429)
    assert retried["retCode"] == 0
    assert len(fake.orders) == 1
    assert len(fake.rest_calls(CREATE)) == 4


async def test_http_429_with_an_empty_body(fake: FakeBybit, rest: Callable[..., HTTP]) -> None:
    fake.fail_next(WALLET, http_status=429, body="", times=2)
    throttled = await failed(rest(), "get_wallet_balance", accountType="UNIFIED")
    async with aiohttp.ClientSession() as client, client.get(f"{fake.url}{WALLET}") as answer:
        status, text = answer.status, await answer.text()

    assert throttled.status_code == 429
    assert (status, text) == (429, "")
    assert (await call(rest(), "get_wallet_balance", accountType="UNIFIED"))["retCode"] == 0


async def test_a_delayed_answer_is_still_banned_and_recorded_first(
    fake: FakeBybit, rest: Callable[..., HTTP]
) -> None:
    fake.set_rest_delay(0.1)
    fake.ban_ip()
    session = rest()

    answers = await asyncio.gather(
        failed(session, "get_server_time"), failed(rest(), "get_server_time")
    )

    assert [a.status_code for a in answers] == [403, 403]
    assert len(fake.rest_calls("/v5/market/time")) == 2
