"""The account as real Bybit describes it: the API key's rights (any right that moves funds out
refuses the key), the USDT balance net of borrowing, and which instruments are USDT perpetuals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trader.errors import ExchangeError
from trader.exchange.bybit_messages import parse_permissions, parse_wallet
from trader.exchange.bybit_rights import FUND_GROUPS, SAFE_GROUPS
from trader.exchange.market import parse_instrument


def _key(read_only: int = 0, **groups: list[str]) -> dict[str, Any]:
    return {
        "readOnly": read_only,
        "permissions": {"ContractTrade": ["Order", "Position"], **groups},
    }


@pytest.mark.parametrize(
    ("group", "right", "said"),
    [
        ("Wallet", "Withdraw", "can withdraw funds"),
        ("Wallet", "AccountTransfer", "can transfer funds out"),
        ("Wallet", "SubMemberTransfer", "can transfer funds out"),
        ("Wallet", "SubMemberTransferList", "can transfer funds out"),
        ("Wallet", "SomeNewWalletRight", "can move funds out"),
        ("FiatP2P", "FiatP2POrder", "can move funds out"),
        ("FiatP2P", "Advertising", "can move funds out"),
        ("FiatBitPay", "FaitPayOrder", "can move funds out"),
        ("FiatBybitPay", "FaitPayOrder", "can move funds out"),
        ("FiatGlobalPay", "GlobalPayOrder", "can move funds out"),
        ("FiatConvertBroker", "FiatConvertBrokerOrder", "can move funds out"),
        ("BitCard", "BitCard", "can move funds out"),
        ("Earn", "Earn", "can move funds out"),
        ("BlockTrade", "BlockTrade", "can move funds out"),
        ("Spot", "SpotTransfer", "can transfer funds out"),
        ("Gifts", "SendGift", "has rights this bot does not know"),
    ],
)
def test_a_key_that_can_move_funds_out_is_refused_naming_the_right(
    group: str, right: str, said: str
) -> None:
    refusal = parse_permissions(_key(**{group: [right]})).refusal()
    assert refusal is not None
    assert refusal.startswith(f"BYBIT_API_KEY {said}")
    assert f"({group}: {right})" in refusal


@pytest.mark.parametrize(
    ("group", "right"),
    [
        ("Derivatives", "DerivativesTrade"),
        ("Spot", "SpotTrade"),
        ("Options", "OptionsTrade"),
        ("CopyTrading", "CopyTrading"),
        ("Exchange", "ExchangeHistory"),
        ("NFT", "NFTQueryProductList"),
        ("Affiliate", "Affiliate"),
        ("ByXPost", "ByXPost"),
    ],
)
def test_a_right_that_keeps_funds_in_the_account_is_allowed(group: str, right: str) -> None:
    assert parse_permissions(_key(**{group: [right]})).refusal() is None


def test_an_empty_group_refuses_nothing_and_a_key_must_trade_contracts() -> None:
    empty = {group: [] for group in (*FUND_GROUPS, "SomethingNew")}
    assert parse_permissions(_key(**empty)).refusal() is None
    assert parse_permissions(_key(read_only=1)).refusal() == "BYBIT_API_KEY is read-only"
    order_only = {"readOnly": 0, "permissions": {"ContractTrade": ["Order"]}}
    assert "cannot trade contracts" in (parse_permissions(order_only).refusal() or "")


@given(
    group=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=20),
    right=st.text(min_size=1, max_size=20),
)
def test_any_right_of_a_group_bybit_adds_later_refuses_the_key(group: str, right: str) -> None:
    if group in SAFE_GROUPS:
        right = f"{right}Transfer"  # a transfer right is refused in a known group too
    refusal = parse_permissions(_key(**{group: [right]})).refusal()
    assert refusal is not None
    assert f"{group}: {right}" in refusal


@given(
    wallet=st.decimals("-100000", "1000000000", places=8),
    borrowed=st.decimals("0", "1000000", places=8),
)
def test_the_usdt_balance_is_net_of_what_was_borrowed(wallet: Decimal, borrowed: Decimal) -> None:
    usdt = {"coin": "USDT", "walletBalance": str(wallet), "spotBorrow": str(borrowed)}
    # borrowAmount adds derivatives liabilities already in walletBalance: not subtracted again.
    usdt |= {"borrowAmount": str(borrowed + 7), "availableToWithdraw": "", "availableToBorrow": ""}
    btc = {"coin": "BTC", "walletBalance": "1", "spotBorrow": "0.5"}
    result = {"list": [{"accountType": "UNIFIED", "coin": [btc, usdt]}]}
    assert parse_wallet(result) == wallet - borrowed


def test_a_balance_without_spot_borrow_is_its_wallet_balance_and_an_empty_one_is_refused() -> None:
    def result(**usdt: str) -> dict[str, Any]:
        return {"list": [{"coin": [{"coin": "USDT", **usdt}]}]}

    assert parse_wallet(result(walletBalance="12.5", spotBorrow="")) == Decimal("12.5")
    assert parse_wallet(result(walletBalance="12.5")) == Decimal("12.5")
    with pytest.raises(ExchangeError, match="walletBalance"):
        parse_wallet(result(walletBalance=""))


def _instrument(**overrides: Any) -> dict[str, Any]:
    raw = {
        "symbol": "BTCPERP",
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "quoteCoin": "USDC",
        "settleCoin": "USDC",
        "leverageFilter": {"maxLeverage": "100.00"},
        "priceFilter": {"tickSize": "0.50"},
        "lotSizeFilter": {
            "maxOrderQty": "100",
            "minOrderQty": "0.001",
            "qtyStep": "0.001",
            "minNotionalValue": "5",
        },
    }
    return {**raw, **overrides}


@pytest.mark.parametrize(
    ("contract", "settle", "traded"),
    [
        ("LinearPerpetual", "USDT", True),
        ("LinearPerpetual", "USDC", False),
        ("LinearFutures", "USDT", False),
        ("LinearFutures", "USDC", False),
    ],
)
def test_only_a_usdt_perpetual_is_one(contract: str, settle: str, traded: bool) -> None:
    instrument = parse_instrument(_instrument(contractType=contract, settleCoin=settle))
    assert (instrument.contract_type, instrument.settle_coin) == (contract, settle)
    assert instrument.is_usdt_perpetual is traded


def test_an_instrument_settles_in_its_quote_coin_unless_bybit_says_and_names_its_contract() -> None:
    raw = _instrument()
    del raw["settleCoin"]
    assert parse_instrument(raw).settle_coin == "USDC"
    assert parse_instrument(_instrument(status="PreLaunch")).status == "PreLaunch"
    with pytest.raises(ExchangeError, match="contractType"):
        parse_instrument({k: v for k, v in _instrument().items() if k != "contractType"})
