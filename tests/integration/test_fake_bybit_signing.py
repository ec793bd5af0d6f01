"""The fake Bybit's signed REST, driven by the real pybit client: a right and a wrong
secret, an unknown key, a stale timestamp, and the rights a key holds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pybit.exceptions import FailedRequestError
from pybit.unified_trading import HTTP

from tests.fakes.bybit import FakeBybit
from tests.fakes.bybit.pybit_clients import (
    BTC,
    KEY,
    SECRET,
    call,
    fake,
    market_order,
    refused,
    rest,
)

pytestmark = pytest.mark.timeout(15)
__all__ = ["fake", "rest"]  # fixtures

WALLET = "/v5/account/wallet-balance"


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
