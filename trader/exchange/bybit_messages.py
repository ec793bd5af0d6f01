"""Bybit's shapes → ours: every message the trading adapter reads (the private stream's
``order``, ``execution`` and ``position`` pushes, REST rows of the same shapes, key rights,
wallet and closed PnL), parsed here, one function per message, and going no further.
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
from trader.exchange.bybit_wire import decimal_field
from trader.models import CloseReason, Fill, Side

log = logging.getLogger(__name__)

CATEGORY = "linear"  # the private topics also carry spot and option data: not ours
SETTLE_COIN = "USDT"
# An order in one of these states changes no more.
TERMINAL = frozenset({"Filled", "Cancelled", "Rejected", "PartiallyFilledCanceled", "Deactivated"})
# Executions that move a position: an order's trade, a liquidation, an auto-deleveraging, a
# delivery. Funding and settlement move money only.
TRADE_KINDS = frozenset({"Trade", "BustTrade", "AdlTrade", "Delivery", "BlockTrade"})
TRANSFER_PERMISSIONS = frozenset({"AccountTransfer", "SubMemberTransfer", "Withdraw"})
STOP_REASONS = {"StopLoss": CloseReason.STOP_LOSS, "TakeProfit": CloseReason.TAKE_PROFIT}


@dataclass(frozen=True, slots=True)
class Execution:
    """One trade of one order (``execution`` push, or a ``/v5/execution/list`` row)."""

    exec_id: str
    order_id: str
    link_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    closed_size: Decimal  # > 0: it reduced a position
    stop_order_type: str  # "TakeProfit", "StopLoss", "" ...
    at: datetime
    kind: str = "Trade"  # Bybit's execType: "BustTrade" is a liquidation


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's state (``order`` push, or a ``/v5/order/realtime`` row)."""

    order_id: str
    link_id: str
    symbol: str
    status: str
    cum_exec_qty: Decimal
    closed_pnl: Decimal | None  # Bybit's net PnL of what this order closed
    reject_reason: str

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def _ms(value: Any, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError):
        raise ExchangeError(f"Bybit sent {name}={value!r:.40}, not a time in ms") from None


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
    """An execution that traded a linear position, or None (funding, spot, ...)."""
    kind = str(row.get("execType") or "Trade")
    if kind not in TRADE_KINDS or not _ours(row):
        return None
    try:
        return Execution(
            exec_id=str(row["execId"]),
            order_id=str(row["orderId"]),
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
        )
    except (KeyError, ValueError) as exc:
        raise ExchangeError(f"Bybit sent an execution without a valid {exc!s:.40}") from None


def parse_order(row: Mapping[str, Any]) -> OrderUpdate | None:
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
        )
    except KeyError as exc:
        raise ExchangeError(f"Bybit sent an order without {exc!s:.40}") from None


def parse_position(row: Mapping[str, Any]) -> VenuePosition | None:
    """A ``position`` push or ``/v5/position/list`` row; size 0 means flat."""
    if not _ours(row):
        return None
    try:
        qty = decimal_field(row.get("size") or "0", "size")
        side_text = str(row.get("side") or "")
        created, updated = row.get("createdTime"), row.get("updatedTime")
        return VenuePosition(
            symbol=str(row["symbol"]),
            side=Side(side_text) if qty > 0 and side_text in ("Buy", "Sell") else None,
            qty=qty,
            entry_price=_optional_decimal(row.get("avgPrice") or row.get("entryPrice"), "avgPrice")
            or Decimal(0),
            leverage=_optional_decimal(row.get("leverage"), "leverage") or Decimal(0),
            stop_loss=_price_or_none(row.get("stopLoss"), "stopLoss"),
            take_profit=_price_or_none(row.get("takeProfit"), "takeProfit"),
            opened_at=_ms(created, "createdTime") if created else None,
            updated_at=_ms(updated, "updatedTime") if updated else None,
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
    last = max(executions, key=lambda e: e.at)
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


@dataclass(frozen=True, slots=True)
class KeyPermissions:
    read_only: bool
    can_withdraw: bool
    can_transfer: bool
    can_trade_contracts: bool

    def refusal(self) -> str | None:
        """Why a key must not be used for trading, or None."""
        if self.can_withdraw:
            return "BYBIT_API_KEY can withdraw funds"
        if self.can_transfer:
            return "BYBIT_API_KEY can transfer funds"
        if self.read_only:
            return "BYBIT_API_KEY is read-only"
        if not self.can_trade_contracts:
            return "BYBIT_API_KEY cannot trade contracts (needs Contract: Orders and Positions)"
        return None


def parse_permissions(result: Mapping[str, Any]) -> KeyPermissions:
    """``/v5/user/query-api``'s result."""
    permissions = result.get("permissions") or {}
    wallet = set(permissions.get("Wallet") or [])
    contract = set(permissions.get("ContractTrade") or [])
    return KeyPermissions(
        read_only=str(result.get("readOnly")) == "1",
        can_withdraw="Withdraw" in wallet or bool(permissions.get("Withdraw")),
        can_transfer=bool(wallet & (TRANSFER_PERMISSIONS - {"Withdraw"})),
        can_trade_contracts={"Order", "Position"} <= contract,
    )


def parse_wallet(result: Mapping[str, Any]) -> Decimal:
    """USDT ``walletBalance`` from ``/v5/account/wallet-balance``'s result."""
    for account in result.get("list") or []:
        for coin in account.get("coin") or []:
            if coin.get("coin") == SETTLE_COIN:
                return decimal_field(coin.get("walletBalance"), "walletBalance")
    return Decimal(0)


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


def close_reason(execution: Execution) -> CloseReason:
    """Why an execution closed a position: its SL, its TP, a liquidation, or else by hand."""
    if execution.kind == "BustTrade":
        return CloseReason.LIQUIDATION
    return STOP_REASONS.get(execution.stop_order_type, CloseReason.EXTERNAL)
