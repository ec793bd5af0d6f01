"""The rights of the Bybit API key (``/v5/user/query-api``), and the rule that refuses a key
which could move funds out of the account: the bot needs to trade, nothing more.

Bybit lists a key's rights as ``permissions``: group → rights. Each group, as Bybit's docs
describe it (docs/v5/user/apikey-info.mdx, modify-master-apikey.mdx, create-subuid-apikey.mdx):

=================  ==========================================  ========  =======================
group              rights Bybit lists                          the key   why
=================  ==========================================  ========  =======================
ContractTrade      Order, Position                             needed    trades the perpetuals
Derivatives        DerivativesTrade                            allowed   unified account default
Spot               SpotTrade                                   allowed   trades stay in account
Options            OptionsTrade                                allowed   trades stay in account
CopyTrading        CopyTrading (deprecated, always [])         allowed   trades stay in account
Exchange           ExchangeHistory                             allowed   Convert: coins swapped
                                                                         within the account
NFT                NFTQueryProductList (deprecated)            allowed   a query
Affiliate          Affiliate                                   allowed   affiliate data only
ByXPost            ByXPost                                     allowed   community posts
Wallet             Withdraw, AccountTransfer,                  REFUSED   withdraws, or moves
                   SubMemberTransfer, SubMemberTransferList               funds to other accounts
                   (and any other Wallet right)
FiatP2P            FiatP2POrder, Advertising                   REFUSED   sells crypto to
                                                                         strangers for fiat
FiatBitPay,        FaitPayOrder                                REFUSED   Bybit Pay: pays
FiatBybitPay                                                             merchants out of it
FiatGlobalPay      (none listed yet)                           REFUSED   fiat payments out
FiatConvertBroker  FiatConvertBrokerOrder                      REFUSED   crypto sold for fiat
BitCard            BitCard                                     REFUSED   the card spends funds
Earn               Earn                                        REFUSED   moves funds into Earn,
                                                                         out of the margin
BlockTrade         BlockTrade                                  REFUSED   trades at a price set
                                                                         with a chosen party
any other group    any right                                   REFUSED   unknown: may move funds
=================  ==========================================  ========  =======================

Any right whose name holds "Transfer" or "Withdraw", in any group, refuses the key too. A key
is also refused when it is read-only, or lacks ContractTrade's Order and Position. An empty
group refuses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KEY = "BYBIT_API_KEY"
CONTRACT_RIGHTS = frozenset({"Order", "Position"})  # ContractTrade's, to trade perpetuals
# Groups whose rights keep the funds in the account (trading, converting, queries, posts).
SAFE_GROUPS = frozenset(
    {
        "ContractTrade",
        "Derivatives",
        "Spot",
        "Options",
        "CopyTrading",
        "Exchange",
        "NFT",
        "Affiliate",
        "ByXPost",
    }
)
# Groups any right of which can move funds out of the account.
FUND_GROUPS = frozenset(
    {
        "Wallet",
        "FiatP2P",
        "FiatBitPay",
        "FiatBybitPay",
        "FiatGlobalPay",
        "FiatConvertBroker",
        "BitCard",
        "Earn",
        "BlockTrade",
    }
)


@dataclass(frozen=True, slots=True)
class KeyPermissions:
    """The key's rights as Bybit lists them: group → rights."""

    read_only: bool
    rights: Mapping[str, tuple[str, ...]]

    @property
    def can_trade_contracts(self) -> bool:
        return CONTRACT_RIGHTS.issubset(self.rights.get("ContractTrade", ()))

    def fund_movers(self) -> dict[str, list[str]]:
        """What the key can do with funds → the rights that let it ("Group: Right")."""
        found: dict[str, list[str]] = {}
        for group, rights in self.rights.items():
            for right in rights:
                what = _what_it_does(group, right)
                if what is not None:
                    found.setdefault(what, []).append(f"{group}: {right}")
        return found

    def refusal(self) -> str | None:
        """Why the key must not be used for trading, or None."""
        movers = self.fund_movers()
        if movers:
            said = (f"{what} ({', '.join(rights)})" for what, rights in movers.items())
            return f"{KEY} " + "; ".join(said)
        if self.read_only:
            return f"{KEY} is read-only"
        if not self.can_trade_contracts:
            return f"{KEY} cannot trade contracts (needs Contract: Orders and Positions)"
        return None


def _what_it_does(group: str, right: str) -> str | None:
    """What ``right`` lets the key do with funds, or None if it keeps them in the account."""
    if "Withdraw" in right:
        return "can withdraw funds"
    if "Transfer" in right:
        return "can transfer funds out"
    if group in FUND_GROUPS:
        return "can move funds out"
    if group not in SAFE_GROUPS:
        return "has rights this bot does not know, refused in case they move funds"
    return None


def parse_permissions(result: Mapping[str, Any]) -> KeyPermissions:
    """``/v5/user/query-api``'s result."""
    permissions = result.get("permissions")
    rights: dict[str, tuple[str, ...]] = {}
    if isinstance(permissions, Mapping):
        for group, listed in permissions.items():
            if isinstance(listed, list | tuple):
                rights[str(group)] = tuple(str(right) for right in listed if right)
            elif listed:  # not a list: keep it, so that an odd shape is never taken as none
                rights[str(group)] = (str(listed),)
    return KeyPermissions(read_only=str(result.get("readOnly")) == "1", rights=rights)
