"""Reading a private request's parameters the way Bybit validates them: each problem is the
``BybitError`` (retCode 10001, mostly) Bybit answers with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.fakes.bybit.common import CATEGORY, BybitError, params_error
from tests.fakes.bybit.market import FakeInstrument

ORDER_LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
ZERO = Decimal(0)


def require_linear(params: Mapping[str, Any]) -> None:
    if params.get("category") != CATEGORY:
        raise params_error("params error: category is invalid")


def decimal(params: Mapping[str, Any], name: str) -> Decimal:
    value = params.get(name)
    if value is None or value == "":
        raise params_error(f"params error: {name} is required")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise params_error(f"params error: {name} invalid") from None
    if not number.is_finite():
        raise params_error(f"params error: {name} invalid")
    return number


def optional_price(params: Mapping[str, Any], name: str) -> Decimal | None:
    """A TP/SL price: ``None`` when not sent; ``0`` when sent as "0" or "" (cancel it)."""
    if name not in params:
        return None
    if params[name] in ("", "0", 0):
        return ZERO
    price = decimal(params, name)
    if price < 0:
        raise params_error(f"params error: {name} invalid")
    return price


def flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name, False)
    return value is True or str(value).lower() == "true"


def position_idx(params: Mapping[str, Any], hedge_mode: bool) -> int:
    try:
        idx = int(params.get("positionIdx", 0) or 0)
    except (TypeError, ValueError):
        raise params_error("params error: positionIdx invalid") from None
    if (idx == 0) == hedge_mode or idx not in (0, 1, 2):
        raise params_error("position idx not match position mode")
    if hedge_mode:
        raise params_error("fake: only one-way mode (positionIdx 0) is simulated")
    return idx


def order_link_id(params: Mapping[str, Any]) -> str:
    link = params.get("orderLinkId") or ""
    if not isinstance(link, str):
        raise params_error("params error: orderLinkId invalid")
    # The documented limit is 36 characters of letters, digits, "-" and "_".
    if link and ORDER_LINK_ID.fullmatch(link) is None:
        raise params_error("params error: orderLinkId invalid")
    return link


def order_qty(params: Mapping[str, Any], instrument: FakeInstrument) -> Decimal:
    qty = decimal(params, "qty")
    if qty < Decimal(instrument.min_qty):
        raise params_error("The number of contracts exceeds minimum limit allowed")
    if qty % Decimal(instrument.qty_step) != 0:
        raise params_error("Qty invalid: the order quantity must be a multiple of qtyStep")
    if qty > Decimal(instrument.max_mkt_qty):
        raise params_error("The number of contracts exceeds maximum limit allowed")
    return qty


def check_tpsl_side(
    side: str, base: Decimal, take_profit: Decimal | None, stop_loss: Decimal | None
) -> None:
    """A long's SL must be below the current (last) price and its TP above; a short's the
    reverse. Bybit writes prices in these messages as integers scaled by 1e8."""

    def e8(price: Decimal) -> int:
        return int(price * 100_000_000)

    long = side == "Buy"
    if stop_loss and (stop_loss >= base if long else stop_loss <= base):
        relation = "lower than" if long else "greater"
        raise params_error(
            f"sl:{e8(stop_loss)} set for {side} position should {relation} "
            f"base_price:{e8(base)}??LastPrice"
        )
    if take_profit and (take_profit <= base if long else take_profit >= base):
        relation = "greater" if long else "lower than"
        raise params_error(
            f"tp:{e8(take_profit)} set for {side} position should {relation} "
            f"base_price:{e8(base)}??LastPrice"
        )


def trigger_by(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name) or "LastPrice"
    if value not in ("LastPrice", "MarkPrice", "IndexPrice"):
        raise params_error(f"params error: {name} invalid")
    return str(value)


def tpsl_mode(params: Mapping[str, Any]) -> str:
    """``Full`` (the default) or ``Partial``; the TP/SL order types checked against it: Full
    takes Market only (Bybit's docs and recorded answer); Partial's Limit TP/SL is Bybit's but
    not simulated here."""
    mode = params.get("tpslMode") or "Full"
    if mode not in ("Full", "Partial"):
        raise params_error("params error: tpslMode invalid")
    for name in ("tpOrderType", "slOrderType"):
        kind = params.get(name) or "Market"
        if kind not in ("Market", "Limit"):
            raise params_error(f"params error: {name} invalid")
        if kind == "Limit" and mode == "Full":
            raise params_error(f"{name} only support Market when tpSlMode is Full")
        if kind == "Limit":
            raise BybitError(10001, f"fake: {name} Limit is not simulated, only Market")
    return str(mode)


def tpsl_size(params: Mapping[str, Any], name: str, instrument: FakeInstrument) -> Decimal:
    """A partial TP/SL's ``tpSize`` / ``slSize``: a qty on the instrument's step."""
    size = decimal(params, name)
    if size <= 0 or size % Decimal(instrument.qty_step) != 0:
        raise params_error(f"params error: {name} invalid")
    return size


def limit(params: Mapping[str, Any], default: int, maximum: int) -> int:
    try:
        value = int(params.get("limit", default))
    except (TypeError, ValueError):
        raise params_error("params error: limit invalid") from None
    if not 1 <= value <= maximum:
        raise params_error("params error: limit invalid")
    return value
