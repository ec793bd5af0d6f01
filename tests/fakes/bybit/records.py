"""The account's records (positions, orders, executions, closed PnL) and their Bybit v5 shapes.

REST lists and private-stream pushes share one shape per record; a push adds ``category``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.fakes.bybit.common import CATEGORY, fmt, fmt_step

ZERO = Decimal(0)
MAINTENANCE_RATE = Decimal("0.005")  # Bybit's lowest linear maintenance margin rate
OPEN_STATUSES = frozenset({"New", "PartiallyFilled", "Untriggered"})


def _price(value: Decimal | None, tick: str) -> str:
    return "0" if value is None else fmt_step(value, tick)


@dataclass(frozen=True)
class Steps:
    """An instrument's qty and price steps, for writing numbers the way Bybit does."""

    qty: str
    tick: str


@dataclass(eq=False)
class FakePosition:
    """One open one-way (``positionIdx`` 0) position."""

    symbol: str
    side: str  # "Buy" (long) or "Sell" (short)
    size: Decimal
    entry_price: Decimal
    leverage: Decimal
    steps: Steps
    created_ms: int
    updated_ms: int
    seq: int
    open_fee: Decimal = ZERO  # entry fees not yet allotted to a closed-PnL record
    cur_realised_pnl: Decimal = ZERO  # since this position opened: fees and closed PnL
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    tp_trigger_by: str = "LastPrice"
    sl_trigger_by: str = "LastPrice"

    @property
    def value(self) -> Decimal:
        return self.size * self.entry_price

    @property
    def initial_margin(self) -> Decimal:
        return self.value / self.leverage

    def unrealised_pnl(self, mark: Decimal) -> Decimal:
        move = mark - self.entry_price if self.side == "Buy" else self.entry_price - mark
        return move * self.size

    def to_bybit(
        self, mark: Decimal, cum_realised: Decimal, *, stream: bool = False
    ) -> dict[str, Any]:
        margin = self.initial_margin
        row = {
            "positionIdx": 0,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": self.symbol,
            "side": self.side,
            "size": fmt_step(self.size, self.steps.qty),
            "avgPrice": fmt(self.entry_price),
            "positionValue": fmt(self.value),
            "tradeMode": 0,
            "positionStatus": "Normal",
            "autoAddMargin": 0,
            "adlRankIndicator": 2,
            "leverage": fmt(self.leverage),
            "positionBalance": fmt(margin),
            "markPrice": fmt_step(mark, self.steps.tick),
            "liqPrice": "",
            "bustPrice": "",
            "positionIM": fmt(margin),
            "positionMM": fmt(self.value * MAINTENANCE_RATE),
            "positionIMByMp": fmt(self.size * mark / self.leverage),
            "positionMMByMp": fmt(self.size * mark * MAINTENANCE_RATE),
            "tpslMode": "Full",
            "takeProfit": _price(self.take_profit, self.steps.tick),
            "stopLoss": _price(self.stop_loss, self.steps.tick),
            "trailingStop": "0",
            "sessionAvgPrice": "",
            "unrealisedPnl": fmt(self.unrealised_pnl(mark)),
            "curRealisedPnl": fmt(self.cur_realised_pnl),
            "cumRealisedPnl": fmt(cum_realised),
            "seq": self.seq,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.updated_ms),
        }
        return {"category": CATEGORY, **row} if stream else row


def empty_position(
    symbol: str,
    leverage: Decimal,
    mark: Decimal,
    cum_realised: Decimal,
    steps: Steps,
    now_ms: int,
    seq: int,
    *,
    stream: bool = False,
) -> dict[str, Any]:
    """A symbol without a position: Bybit lists it (when asked by symbol) with side ``""``."""
    row = {
        "positionIdx": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": symbol,
        "side": "",
        "size": "0",
        "avgPrice": "0",
        "positionValue": "0",
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 0,
        "leverage": fmt(leverage),
        "positionBalance": "0",
        "markPrice": fmt_step(mark, steps.tick),
        "liqPrice": "",
        "bustPrice": "",
        "positionIM": "0",
        "positionMM": "0",
        "positionIMByMp": "0",
        "positionMMByMp": "0",
        "tpslMode": "Full",
        "takeProfit": "0",
        "stopLoss": "0",
        "trailingStop": "0",
        "sessionAvgPrice": "",
        "unrealisedPnl": "0",
        "curRealisedPnl": "0",
        "cumRealisedPnl": fmt(cum_realised),
        "seq": seq,
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "createdTime": str(now_ms),
        "updatedTime": str(now_ms),
    }
    return {"category": CATEGORY, **row} if stream else row


@dataclass(eq=False)
class FakeOrder:
    """One order: a market order a client placed, or a position's TP/SL conditional order."""

    order_id: str
    order_link_id: str
    symbol: str
    side: str
    qty: Decimal
    steps: Steps
    created_ms: int
    updated_ms: int
    last_price_on_created: Decimal
    status: str = "New"
    order_type: str = "Market"
    time_in_force: str = "IOC"
    price: Decimal | None = None  # a filled market order shows its fill price here
    reduce_only: bool = False
    close_on_trigger: bool = False
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    tp_trigger_by: str = ""
    sl_trigger_by: str = ""
    stop_order_type: str = ""  # "TakeProfit" / "StopLoss" for a position's conditional orders
    create_type: str = "CreateByUser"
    trigger_price: Decimal | None = None
    trigger_by: str = ""
    trigger_direction: int = 0  # 1: triggers on a rise, 2: on a fall
    cum_exec_qty: Decimal = ZERO
    cum_exec_value: Decimal = ZERO
    cum_exec_fee: Decimal = ZERO
    avg_price: Decimal | None = None
    closed_pnl: Decimal = ZERO  # of the part that closed a position, net of fees
    cancel_type: str = "UNKNOWN"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if not self.is_open else self.qty - self.cum_exec_qty

    def to_bybit(self, *, stream: bool = False) -> dict[str, Any]:
        tick, leaves = self.steps.tick, self.leaves_qty
        row = {
            "orderId": self.order_id,
            "orderLinkId": self.order_link_id,
            "blockTradeId": "",
            "symbol": self.symbol,
            "price": _price(self.price, tick),
            "qty": fmt_step(self.qty, self.steps.qty),
            "side": self.side,
            "isLeverage": "",
            "positionIdx": 0,
            "orderStatus": self.status,
            "createType": self.create_type,
            "cancelType": self.cancel_type,
            "rejectReason": "EC_NoError",
            "avgPrice": "" if self.avg_price is None else fmt(self.avg_price),
            "leavesQty": fmt_step(leaves, self.steps.qty),
            "leavesValue": fmt(leaves * (self.price or self.trigger_price or ZERO)),
            "cumExecQty": fmt_step(self.cum_exec_qty, self.steps.qty),
            "cumExecValue": fmt(self.cum_exec_value),
            "cumExecFee": fmt(self.cum_exec_fee),
            "timeInForce": self.time_in_force,
            "orderType": self.order_type,
            "stopOrderType": self.stop_order_type,
            "orderIv": "",
            "marketUnit": "",
            "triggerPrice": _price(self.trigger_price, tick),
            "takeProfit": _price(self.take_profit, tick),
            "stopLoss": _price(self.stop_loss, tick),
            "tpTriggerBy": self.tp_trigger_by,
            "slTriggerBy": self.sl_trigger_by,
            "triggerDirection": self.trigger_direction,
            "triggerBy": self.trigger_by,
            "lastPriceOnCreated": fmt_step(self.last_price_on_created, tick),
            "reduceOnly": self.reduce_only,
            "closeOnTrigger": self.close_on_trigger,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "tpslMode": "Full"
            if self.take_profit or self.stop_loss or self.stop_order_type
            else "",
            "tpLimitPrice": "0",
            "slLimitPrice": "0",
            "placeType": "",
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.updated_ms),
        }
        if stream:
            return {
                "category": CATEGORY,
                **row,
                "feeCurrency": "",
                "closedPnl": fmt(self.closed_pnl),
            }
        return row


@dataclass(frozen=True)
class FakeExecution:
    """One fill (``execType`` Trade): always the taker side, at the book."""

    exec_id: str
    order: FakeOrder
    exec_price: Decimal
    exec_qty: Decimal
    exec_fee: Decimal
    fee_rate: Decimal
    closed_size: Decimal
    mark_price: Decimal
    exec_ms: int
    seq: int

    def to_bybit(self, *, stream: bool = False) -> dict[str, Any]:
        order, steps = self.order, self.order.steps
        row = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderLinkId": order.order_link_id,
            "side": order.side,
            "orderPrice": _price(order.price, steps.tick),
            "orderQty": fmt_step(order.qty, steps.qty),
            "leavesQty": fmt_step(order.qty - order.cum_exec_qty, steps.qty),
            "createType": order.create_type,
            "orderType": order.order_type,
            "stopOrderType": order.stop_order_type,
            "execFee": fmt(self.exec_fee),
            "execId": self.exec_id,
            "execPrice": fmt_step(self.exec_price, steps.tick),
            "execQty": fmt_step(self.exec_qty, steps.qty),
            "execType": "Trade",
            "execValue": fmt(self.exec_price * self.exec_qty),
            "execTime": str(self.exec_ms),
            "feeCurrency": "USDT",
            "isMaker": False,
            "feeRate": fmt(self.fee_rate),
            "tradeIv": "",
            "markIv": "",
            "markPrice": fmt_step(self.mark_price, steps.tick),
            "indexPrice": fmt_step(self.mark_price, steps.tick),
            "underlyingPrice": "",
            "blockTradeId": "",
            "closedSize": fmt_step(self.closed_size, steps.qty),
            "seq": self.seq,
            "extraFees": "",
        }
        return {"category": CATEGORY, **row, "isLeverage": "0"} if stream else row


@dataclass(frozen=True)
class FakeClosedPnl:
    """One ``/v5/position/closed-pnl`` record: the part of a position one order closed.

    ``closed_pnl`` is net of fees, as Bybit reports it: the price move on ``closed_size``, minus
    the entry fee pro rata (``open_fee``) and the exit fee (``close_fee``).
    """

    order: FakeOrder
    closed_size: Decimal
    avg_entry_price: Decimal
    avg_exit_price: Decimal
    closed_pnl: Decimal
    open_fee: Decimal
    close_fee: Decimal
    leverage: Decimal
    created_ms: int

    def to_bybit(self) -> dict[str, Any]:
        order, steps = self.order, self.order.steps
        return {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "side": order.side,
            "qty": fmt_step(order.qty, steps.qty),
            "orderPrice": _price(order.price, steps.tick),
            "orderType": order.order_type,
            "execType": "Trade",
            "closedSize": fmt_step(self.closed_size, steps.qty),
            "cumEntryValue": fmt(self.avg_entry_price * self.closed_size),
            "avgEntryPrice": fmt(self.avg_entry_price),
            "cumExitValue": fmt(self.avg_exit_price * self.closed_size),
            "avgExitPrice": fmt(self.avg_exit_price),
            "closedPnl": fmt(self.closed_pnl),
            "fillCount": "1",
            "leverage": fmt(self.leverage),
            "openFee": fmt(self.open_fee),
            "closeFee": fmt(self.close_fee),
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.created_ms),
        }
