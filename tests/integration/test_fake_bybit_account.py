"""The fake Bybit's account as the real one shows it, with the real pybit client:
borrowing in the wallet, every permission group a key can hold, and USDC perpetuals
and dated futures listed under ``linear``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pybit.unified_trading import HTTP

from tests.fakes.bybit import DATED_FUTURE, PERMISSION_GROUPS, USDC_PERPETUAL, FakeBybit
from tests.fakes.bybit.pybit_clients import fake, rest, result

pytestmark = pytest.mark.timeout(15)
__all__ = ["fake", "rest"]  # fixtures


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
