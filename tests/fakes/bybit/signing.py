"""API keys and Bybit v5's request signing, checked the way Bybit checks them.

REST: ``X-BAPI-SIGN`` = hex HMAC-SHA256(secret, timestamp + api_key + recv_window + payload), where
the payload is the query string of a GET and the JSON body of a POST; the timestamp must satisfy
``server_time - recv_window <= timestamp < server_time + 1000``. Private stream: ``{"op": "auth",
"args": [api_key, expires, hex HMAC-SHA256(secret, "GET/realtime" + expires)]}`` with ``expires``
(ms) after the server's clock. An expired login is answered ``"ret_msg": "Params Error"``, as
Bybit's v5 stream answers it (pybit issues 152 and 300 quote the reply of clocks a second off).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.bybit.common import BybitError

DEFAULT_RECV_WINDOW = 5000  # ms, Bybit's default when X-BAPI-RECV-WINDOW is absent
FUTURE_TOLERANCE_MS = 1000  # a request may be stamped at most this far ahead of the server

# Endpoints that change something: a read-only key, or one without contract trading, is refused.
TRADING_PATHS = frozenset(
    {
        "/v5/order/create",
        "/v5/position/set-leverage",
        "/v5/position/switch-mode",
        "/v5/position/trading-stop",
    }
)


def sign(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def rest_signature(secret: str, timestamp: str, key: str, recv_window: str, payload: str) -> str:
    return sign(secret, f"{timestamp}{key}{recv_window}{payload}")


def ws_signature(secret: str, expires: int) -> str:
    return sign(secret, f"GET/realtime{expires}")


# Every permission group ``/v5/user/query-api`` reports, in Bybit's order (the docs' example and
# a recorded testnet key), each with the rights it can hold, as far as Bybit's docs name them.
PERMISSION_GROUPS: dict[str, tuple[str, ...]] = {
    "ContractTrade": ("Order", "Position"),
    "Spot": ("SpotTrade",),
    "Wallet": ("AccountTransfer", "SubMemberTransfer", "SubMemberTransferList", "Withdraw"),
    "Options": ("OptionsTrade",),
    "Derivatives": ("DerivativesTrade",),
    "CopyTrading": ("CopyTrading",),
    "BlockTrade": ("BlockTrade",),
    "Exchange": ("ExchangeHistory",),
    "NFT": (),  # deprecated, always [] (changelog 2025-04-16)
    "Affiliate": ("Affiliate",),
    "Earn": ("Earn",),
    "FiatP2P": ("FiatP2POrder", "Advertising"),
    "FiatBybitPay": ("FaitPayOrder",),  # sic: Bybit's spelling
    "FiatConvertBroker": ("FiatConvertBrokerOrder",),
    "FiatGlobalPay": (),
    "FiatBitPay": ("FaitPayOrder",),
    "BitCard": ("BitCard",),
    "ByXPost": ("ByXPost",),
}


@dataclass(frozen=True)
class FakeApiKey:
    """One API key and what it may do; ``/v5/user/query-api`` reports it as Bybit would.

    ``withdraw``, ``transfer`` (AccountTransfer and SubMemberTransfer) and
    ``sub_member_transfer_list`` fill the Wallet group; ``groups`` sets any group's rights
    outright (e.g. ``(("FiatP2P", ("FiatP2POrder",)),)``), last."""

    key: str
    secret: str
    read_only: bool = False
    withdraw: bool = False
    transfer: bool = False
    contract_trade: bool = True
    unified: bool = True
    user_id: int = 1_448_939
    sub_member_transfer_list: bool = False
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def can_trade(self) -> bool:
        return self.contract_trade and not self.read_only

    def permissions(self) -> dict[str, list[str]]:
        wallet = (
            (["AccountTransfer", "SubMemberTransfer"] if self.transfer else [])
            + (["SubMemberTransferList"] if self.sub_member_transfer_list else [])
            + (["Withdraw"] if self.withdraw else [])
        )
        rights: dict[str, list[str]] = {group: [] for group in PERMISSION_GROUPS}
        rights["ContractTrade"] = ["Order", "Position"] if self.contract_trade else []
        rights["Wallet"] = wallet
        for group, granted in self.groups:
            rights[group] = list(granted)
        return rights

    def to_bybit(self) -> dict[str, Any]:
        """``/v5/user/query-api``'s ``result``."""
        return {
            "id": str(int(hashlib.sha256(self.key.encode()).hexdigest()[:6], 16)),
            "note": "fake",
            "apiKey": self.key,
            "readOnly": 1 if self.read_only else 0,
            "secret": "",
            "permissions": self.permissions(),
            "ips": ["*"],
            "type": 1,
            "deadlineDay": 83,
            "expiredAt": "2099-01-01T00:00:00Z",
            "createdAt": "2025-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1 if self.unified else 0,
            "userID": self.user_id,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_1",
            "kycRegion": "",
            "userIDInt64": "0",  # as recorded, beside a non-zero userID
            "inviterIDInt64": "0",
            "affiliateIDInt64": "0",
        }


def check_rest_auth(
    keys: Mapping[str, FakeApiKey],
    headers: Mapping[str, str],
    payloads: Sequence[str],
    server_ms: int,
) -> FakeApiKey:
    """The key a signed REST request was made with, or the ``BybitError`` Bybit answers.

    ``payloads``: what the signature may cover (the raw and the decoded query string of a GET,
    which are the same for anything pybit sends; the body of a POST).
    """
    api_key = headers.get("X-BAPI-API-KEY", "")
    known = keys.get(api_key)
    if known is None:
        raise BybitError(10003, "API key is invalid.")
    timestamp = headers.get("X-BAPI-TIMESTAMP", "")
    recv_window = headers.get("X-BAPI-RECV-WINDOW", str(DEFAULT_RECV_WINDOW))
    try:
        stamped, window = int(timestamp), int(recv_window)
    except ValueError:
        raise BybitError(10002, "invalid request, please check your timestamp") from None
    if not server_ms - window <= stamped < server_ms + FUTURE_TOLERANCE_MS:
        raise BybitError(
            10002,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{stamped}],server_timestamp[{server_ms}],recv_window[{window}]",
        )
    given = headers.get("X-BAPI-SIGN", "")
    for payload in payloads:
        expected = rest_signature(known.secret, timestamp, api_key, recv_window, payload)
        if hmac.compare_digest(expected, given):
            return known
    # Bybit quotes the string it signed, with the key masked; the secret is never in it.
    raise BybitError(10004, f"error sign! origin_string[{timestamp}***{recv_window}{payloads[0]}]")


def check_ws_auth(
    keys: Mapping[str, FakeApiKey], args: Sequence[Any], server_ms: int
) -> FakeApiKey:
    """The key a private stream authenticated with; ``ValueError(ret_msg)`` when refused."""
    if len(args) != 3:
        raise ValueError("Params Error")
    api_key, expires, signature = args
    known = keys.get(str(api_key))
    if known is None:
        raise ValueError("Invalid apikey")
    try:
        expires_ms = int(expires)
    except (TypeError, ValueError):
        raise ValueError("Params Error") from None
    if expires_ms <= server_ms:
        raise ValueError("Params Error")
    if not hmac.compare_digest(ws_signature(known.secret, expires_ms), str(signature)):
        raise ValueError("Signature verification failed")
    return known
