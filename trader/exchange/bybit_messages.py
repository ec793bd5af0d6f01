"""Bybit's shapes → ours: every message the trading adapter reads (the private stream's
``order``, ``execution`` and ``position`` pushes, REST rows of the same shapes, wallet and closed
PnL), parsed here, one function per message, and going no further. Key rights: ``bybit_rights``.

Checked against every recorded payload in ``shared/bybit/payloads/``
(``tests/unit/test_bybit_payloads.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trader.errors import ExchangeError
from trader.exchange.base import VenuePosition
from trader.exchange.bybit_rights import KeyPermissions, parse_permissions
from trader.exchange.bybit_wire import decimal_field
from trader.models import CloseReason, Fill, Side

__all__ = [
    "CATEGORY",
    "SETTLE_COIN",
    "Execution",
    "KeyPermissions",
    "OrderUpdate",
    "close_reason",
    "fill_from",
    "parse_closed_pnl",
    "parse_execution",
    "parse_order",
    "parse_permissions",
    "parse_position",
    "parse_rows",
    "parse_wallet",
    "result_of",
    "rows_of",
    "usdt_balance",
]

log = logging.getLogger(__name__)

CATEGORY = "linear"  # the private topics also carry spot and option data: not ours
SETTLE_COIN = "USDT"
# An order in one of these states changes no more. In derivatives a "Cancelled" order may have
# filled in part (a market order is an IOC order within a price band); Bybit's docs reserve
# "PartiallyFilledCanceled" for spot, but it is final wherever it comes from.
TERMINAL = frozenset({"Filled", "Cancelled", "Rejected", "PartiallyFilledCanceled", "Deactivated"})
# Executions that move a position: an order's trade, a liquidation, an auto-deleveraging, a
# delivery or delisting (a trade with no order behind it). Funding and settlement move money only.
TRADE_KINDS = frozenset({"Trade", "BustTrade", "AdlTrade", "Delivery", "BlockTrade"})
NO_ORDER_KINDS = frozenset({"Delivery"})  # Bybit may send these with an empty orderId

# Why Bybit closed a position by itself, from the most telling field down: the execution's
# execType, then the order's createType, then its stopOrderType. Anything else: by hand.
EXEC_REASONS = {
    "BustTrade": CloseReason.LIQUIDATION,
    "AdlTrade": CloseReason.ADL,
    "Delivery": CloseReason.DELIVERY,
}
CREATE_REASONS = {
    "CreateByLiq": CloseReason.LIQUIDATION,  # laddered liquidation
    "CreateByTakeOver_PassThrough": CloseReason.LIQUIDATION,  # taken over at bankruptcy price
    "CreateByAdl_PassThrough": CloseReason.ADL,
    "CreateBySettle": CloseReason.DELIVERY,  # delivery, or the contract was delisted
    "CreateByStopLoss": CloseReason.STOP_LOSS,
    "CreateByPartialStopLoss": CloseReason.STOP_LOSS,
    "CreateByTakeProfit": CloseReason.TAKE_PROFIT,
    "CreateByPartialTakeProfit": CloseReason.TAKE_PROFIT,
    "CreateByTrailingStop": CloseReason.TRAILING_STOP,
    "CreateByTrailingProfit": CloseReason.TRAILING_STOP,  # a trailing take-profit
}
STOP_REASONS = {
    "StopLoss": CloseReason.STOP_LOSS,
    "PartialStopLoss": CloseReason.STOP_LOSS,
    "TakeProfit": CloseReason.TAKE_PROFIT,
    "PartialTakeProfit": CloseReason.TAKE_PROFIT,
    "TrailingStop": CloseReason.TRAILING_STOP,
}


@dataclass(frozen=True, slots=True)
class Execution:
    """One trade (``execution`` push, or a ``/v5/execution/list`` row). ``order_id`` is ""
    for a delivery, which has no order behind it."""

    exec_id: str
    order_id: str
    link_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    closed_size: Decimal  # > 0: it reduced a position
    stop_order_type: str  # "TakeProfit", "StopLoss", "TrailingStop", "UNKNOWN", "" ...
    at: datetime
    kind: str = "Trade"  # Bybit's execType: "BustTrade" is a liquidation, ...
    create_type: str = ""  # the order's createType: "CreateByUser", "CreateByLiq", ...


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's state (``order`` push, or a ``/v5/order/realtime`` or history row)."""

    order_id: str
    link_id: str
    symbol: str
    status: str
    cum_exec_qty: Decimal
    closed_pnl: Decimal | None  # Bybit's net PnL of what this order closed
    reject_reason: str
    create_type: str = ""  # "CreateByUser", "CreateByLiq", "CreateBySettle", ...
    order_type: str = ""  # "Market", "Limit"
    reduce_only: bool = False
    stop_order_type: str = ""  # "StopLoss", "TakeProfit", "TrailingStop", "" ...
    cancel_type: str = ""  # "CancelByUser", "CancelByPrepareLiq", "UNKNOWN" ...
    leaves_qty: Decimal | None = None  # what is still to fill; None when Bybit sends ""
    avg_price: Decimal | None = None  # of what filled; None before anything did
    cum_exec_fee: Decimal | None = None
    qty: Decimal | None = None  # what the order is for
    trigger_price: Decimal | None = None  # a conditional order's; None for a plain one

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def partially_filled(self) -> bool:
        """Final with part of it filled (an IOC market order cut at its price band): what
        filled is booked, never taken for a rejection nor for the whole order."""
        return self.terminal and self.status != "Filled" and self.cum_exec_qty > 0


def _ms(value: Any, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise ExchangeError(f"Bybit sent {name}={value!r:.40}, not a time in ms") from None


def _optional_ms(value: Any, name: str) -> datetime | None:
    """A time in ms (a string or, in newer fields such as ``openTime``, a number); Bybit sends
    "" or 0 for none."""
    if value is None or value == "" or str(value) == "0":
        return None
    return _ms(value, name)


def _optional_decimal(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    return decimal_field(value, name)


def _price_or_none(value: Any, name: str) -> Decimal | None:
    """A TP/SL price: "" or "0" when none is set."""
    price = _optional_decimal(value, name)
    return price if price is not None and price > 0 else None


def _ours(row: Mapping[str, Any]) -> bool:
    """A linear row (REST rows, asked for by category, may not say it)."""
    return str(row.get("category") or CATEGORY) == CATEGORY


def parse_execution(row: Mapping[str, Any]) -> Execution | None:
    """An execution that traded a linear position, or None (funding, spot, option, ...)."""
    kind = str(row.get("execType") or "Trade")
    if kind not in TRADE_KINDS or not _ours(row):
        return None
    try:
        order_id = row.get("orderId") if kind in NO_ORDER_KINDS else row["orderId"]
        return Execution(
            exec_id=str(row["execId"]),
            order_id=str(order_id or ""),
            link_id=str(row.get("orderLinkId") or ""),
            symbol=str(row["symbol"]),
            side=Side(str(row["side"])),
            qty=decimal_field(row["execQty"], "execQty"),
            price=decimal_field(row["execPrice"], "execPrice"),
            fee=decimal_field(row["execFee"], "execFee"),
            closed_size=_optional_decimal(row.get("closedSize"), "closedSize") or Decimal(0),
            stop_order_type=str(row.get("stopOrderType") or ""),
            at=_ms(row["execTime"], "execTime"),
            kind=kind,
            create_type=str(row.get("createType") or ""),
        )
    except (KeyError, ValueError) as exc:
        raise ExchangeError(f"Bybit sent an execution without a valid {exc!s:.40}") from None


def parse_order(row: Mapping[str, Any]) -> OrderUpdate | None:
    """A linear order's state, or None (spot, option)."""
    if not _ours(row):
        return None
    try:
        return OrderUpdate(
            order_id=str(row["orderId"]),
            link_id=str(row.get("orderLinkId") or ""),
            symbol=str(row["symbol"]),
            status=str(row["orderStatus"]),
            cum_exec_qty=_optional_decimal(row.get("cumExecQty"), "cumExecQty") or Decimal(0),
            closed_pnl=_optional_decimal(row.get("closedPnl"), "closedPnl"),
            reject_reason=str(row.get("rejectReason") or ""),
            create_type=str(row.get("createType") or ""),
            order_type=str(row.get("orderType") or ""),
            reduce_only=row.get("reduceOnly") is True,
            stop_order_type=str(row.get("stopOrderType") or ""),
            cancel_type=str(row.get("cancelType") or ""),
            leaves_qty=_optional_decimal(row.get("leavesQty"), "leavesQty"),
            # Bybit sends avgPrice "" or "0" while nothing has filled.
            avg_price=_price_or_none(row.get("avgPrice"), "avgPrice"),
            cum_exec_fee=_optional_decimal(row.get("cumExecFee"), "cumExecFee"),
            qty=_optional_decimal(row.get("qty"), "qty"),
            trigger_price=_price_or_none(row.get("triggerPrice"), "triggerPrice"),
        )
    except KeyError as exc:
        raise ExchangeError(f"Bybit sent an order without {exc!s:.40}") from None


def parse_position(row: Mapping[str, Any]) -> VenuePosition | None:
    """A ``position`` push or ``/v5/position/list`` row; size 0 means flat (its side is "",
    or "None" on a classic account).

    Its open time is ``openTime``, when Bybit gives it: ``createdTime`` is when a position on
    the symbol was first ever created, long before the current one opened.
    """
    if not _ours(row):
        return None
    try:
        qty = decimal_field(row.get("size") or "0", "size")
        side_text = str(row.get("side") or "")
        # The REST row says avgPrice, the push entryPrice.
        entry = row.get("avgPrice") or row.get("entryPrice")
        return VenuePosition(
            symbol=str(row["symbol"]),
            side=Side(side_text) if qty > 0 and side_text in ("Buy", "Sell") else None,
            qty=qty,
            entry_price=_optional_decimal(entry, "avgPrice") or Decimal(0),
            leverage=_optional_decimal(row.get("leverage"), "leverage") or Decimal(0),
            stop_loss=_price_or_none(row.get("stopLoss"), "stopLoss"),
            take_profit=_price_or_none(row.get("takeProfit"), "takeProfit"),
            opened_at=_optional_ms(row.get("openTime"), "openTime"),
            updated_at=_optional_ms(row.get("updatedTime"), "updatedTime"),
            first_created_at=_optional_ms(row.get("createdTime"), "createdTime"),
            trailing_stop=_price_or_none(row.get("trailingStop"), "trailingStop"),
        )
    except KeyError as exc:
        raise ExchangeError(f"Bybit sent a position without {exc!s:.40}") from None


def fill_from(
    executions: Sequence[Execution], link_id: str, closed_pnl: Decimal | None = None
) -> Fill | None:
    """One order's fill: quantity summed, price weighted by quantity, Bybit's own fees summed,
    and the closed PnL Bybit booked for it. None without executions."""
    if not executions:
        return None
    qty = sum((e.qty for e in executions), Decimal(0))
    value = sum((e.qty * e.price for e in executions), Decimal(0))
    # The fill is stored under one execution's id, and that id is what stops an exit being
    # booked twice: the same executions must give the same id whatever order they came in
    # (pushes oldest first, REST newest first; several often share one execTime).
    last = max(executions, key=lambda e: (e.at, e.exec_id))
    return Fill(
        link_id=link_id,
        symbol=last.symbol,
        side=last.side,
        qty=qty,
        price=value / qty,
        fee=sum((e.fee for e in executions), Decimal(0)),
        at=last.at,
        exec_id=last.exec_id,
        closed_pnl=closed_pnl,
    )


def parse_rows(
    rows: Sequence[Mapping[str, Any]], parse: Callable[[Mapping[str, Any]], Any]
) -> list[Any]:
    """Every row ``parse`` accepts; a malformed one is logged and dropped, never fatal."""
    parsed = []
    for row in rows:
        try:
            item = parse(row)
        except ExchangeError as exc:
            log.warning("private data dropped: %s", exc)
            continue
        if item is not None:
            parsed.append(item)
    return parsed


def parse_wallet(result: Mapping[str, Any]) -> Decimal:
    """The unified account's USDT balance net of borrowing, from
    ``/v5/account/wallet-balance``'s result; 0 when Bybit lists no USDT (it leaves out coins
    with neither assets nor liabilities)."""
    for account in result.get("list") or []:
        if isinstance(account, Mapping):
            balance = usdt_balance(account)
            if balance is not None:
                return balance
    return Decimal(0)


def usdt_balance(account: Mapping[str, Any]) -> Decimal | None:
    """USDT ``walletBalance − spotBorrow`` of one account of the wallet-balance list, or None
    if it holds no USDT.

    Bybit's wallet-balance docs (docs/v5/account/wallet-balance.mdx, since manual borrowing in
    the unified account): "Old walletBalance = New walletBalance − spotBorrow", and a coin's
    equity is "walletBalance − spotBorrow + unrealisedPnl + option value". Borrowed coins are
    in walletBalance; spotBorrow is that debt. Not borrowAmount: it adds the derivatives
    liabilities, which are realised losses already in a negative walletBalance and unrealised
    ones that are not realised balance. Accounts from before spotBorrow existed have none:
    their walletBalance is already net.
    """
    for coin in account.get("coin") or []:
        if isinstance(coin, Mapping) and coin.get("coin") == SETTLE_COIN:
            wallet = decimal_field(coin.get("walletBalance"), "walletBalance")
            borrowed = _optional_decimal(coin.get("spotBorrow"), "spotBorrow") or Decimal(0)
            return wallet - borrowed
    return None


def parse_closed_pnl(rows: Sequence[Mapping[str, Any]], order_id: str) -> Decimal | None:
    """The ``closedPnl`` Bybit booked for ``order_id`` (``/v5/position/closed-pnl``)."""
    for row in rows:
        if str(row.get("orderId")) == order_id:
            return decimal_field(row.get("closedPnl"), "closedPnl")
    return None


def result_of(response: Any) -> Mapping[str, Any]:
    result = response.get("result") if isinstance(response, Mapping) else None
    if not isinstance(result, Mapping):
        raise ExchangeError("Bybit sent a response without a result")
    return result


def rows_of(response: Any) -> list[Mapping[str, Any]]:
    rows = result_of(response).get("list") or []
    return [row for row in rows if isinstance(row, Mapping)]


def close_reason(execution: Execution, order: OrderUpdate | None = None) -> CloseReason:
    """Why an execution closed a position: a liquidation, an auto-deleveraging, a delivery,
    its SL, TP or trailing stop, or else by hand. ``order``, when known, is the order behind
    it (its createType / stopOrderType tell a laddered liquidation or a stop the execution
    may not)."""
    reason = EXEC_REASONS.get(execution.kind)
    for create_type in (execution.create_type, order.create_type if order else ""):
        reason = reason or CREATE_REASONS.get(create_type)
    for stop_type in (execution.stop_order_type, order.stop_order_type if order else ""):
        reason = reason or STOP_REASONS.get(stop_type)
    return reason or CloseReason.EXTERNAL
