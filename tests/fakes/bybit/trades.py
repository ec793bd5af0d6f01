"""The account's orders, executions and closed-PnL records, and their Bybit v5 shapes.

REST lists and private-stream pushes share one shape per record; a push adds ``category`` (and
a few stream-only fields). Empty TP/SL and trigger prices are "" on orders, as recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.fakes.bybit.common import CATEGORY, fmt, fmt_step
from tests.fakes.bybit.records import ZERO, Steps, price_text

OPEN_STATUSES = frozenset({"New", "PartiallyFilled", "Untriggered"})


@dataclass(eq=False)
class FakeOrder:
    """One order: a market order a client placed, a position's TP/SL or trailing-stop
    conditional order, or an order Bybit placed itself (liquidation, ADL)."""

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
    # A position's conditional orders: "TakeProfit" / "StopLoss" (tpslMode Full),
    # "PartialTakeProfit" / "PartialStopLoss" (Partial), "TrailingStop".
    stop_order_type: str = ""
    tpsl_mode: str = ""  # "": "Full" if the order has TP/SL or is a TP/SL order, else ""
    pair_id: str = ""  # a partial TP/SL set with its SL/TP: the other's orderId
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
    reject_reason: str = "EC_NoError"
    fee_coin: str = "USDT"

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
            "price": price_text(self.price, tick),
            "qty": fmt_step(self.qty, self.steps.qty),
            "side": self.side,
            "isLeverage": "",
            "positionIdx": 0,
            "orderStatus": self.status,
            "createType": self.create_type,
            "cancelType": self.cancel_type,
            "rejectReason": self.reject_reason,
            "avgPrice": "" if self.avg_price is None else fmt(self.avg_price),
            "leavesQty": fmt_step(leaves, self.steps.qty),
            "leavesValue": fmt(leaves * (self.price or self.trigger_price or ZERO)),
            "cumExecQty": fmt_step(self.cum_exec_qty, self.steps.qty),
            "cumExecValue": fmt(self.cum_exec_value),
            "cumExecFee": fmt(self.cum_exec_fee),
            "cumFeeDetail": {self.fee_coin: fmt(self.cum_exec_fee)} if self.cum_exec_fee else {},
            "timeInForce": self.time_in_force,
            "orderType": self.order_type,
            "stopOrderType": self.stop_order_type,
            "orderIv": "",
            "marketUnit": "",
            "slippageToleranceType": "UNKNOWN",
            "slippageTolerance": "0",
            "triggerPrice": price_text(self.trigger_price, tick, none=""),
            "takeProfit": price_text(self.take_profit, tick, none=""),
            "stopLoss": price_text(self.stop_loss, tick, none=""),
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
            "tpslMode": self.tpsl_mode
            or ("Full" if self.take_profit or self.stop_loss or self.stop_order_type else ""),
            "tpLimitPrice": "0",
            "slLimitPrice": "0",
            "placeType": "",
            "extraFees": "",
            "rpiTakerAccess": False,
            "rpiMatchedQty": "0",
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.updated_ms),
        }
        if stream:
            del row["extraFees"]  # REST only: Bybit's order push has no extraFees
            return {
                "category": CATEGORY,
                **row,
                "feeCurrency": "",
                "closedPnl": fmt(self.closed_pnl),
            }
        return row


@dataclass(frozen=True)
class FakeExecution:
    """One fill: always the taker side. ``exec_type`` "Trade" for an order's fill at the book;
    "BustTrade", "AdlTrade" or "Delivery" for an exit Bybit made itself (a delivery has no order
    behind it: ``order`` is then a stand-in that no order list shows)."""

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
    leaves_qty: Decimal = ZERO  # the order's, right after this fill
    exec_type: str = "Trade"
    exec_pnl: Decimal = ZERO  # PnL of the part it closed, before fees (the push's execPnl)

    def to_bybit(self, *, stream: bool = False) -> dict[str, Any]:
        order, steps = self.order, self.order.steps
        row = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderLinkId": order.order_link_id,
            "side": order.side,
            "orderPrice": price_text(order.price, steps.tick),
            "orderQty": fmt_step(order.qty, steps.qty),
            "leavesQty": fmt_step(self.leaves_qty, steps.qty),
            "createType": order.create_type,
            "orderType": order.order_type,
            # Recorded executions of plain orders say "UNKNOWN" where the order says "".
            "stopOrderType": order.stop_order_type or "UNKNOWN",
            "execFee": fmt(self.exec_fee),
            "execId": self.exec_id,
            "execPrice": fmt_step(self.exec_price, steps.tick),
            "execQty": fmt_step(self.exec_qty, steps.qty),
            "execType": self.exec_type,
            "execValue": fmt(self.exec_price * self.exec_qty),
            "execTime": str(self.exec_ms),
            "feeCurrency": order.fee_coin,
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
            "marketUnit": "",
        }
        if stream:
            return {
                "category": CATEGORY,
                **row,
                "isLeverage": "0",
                "execPnl": fmt(self.exec_pnl),
            }
        return row


@dataclass(frozen=True)
class FakeClosedPnl:
    """One ``/v5/position/closed-pnl`` record: the part of a position one order (or one exit
    Bybit made itself, named by ``exec_type``) closed.

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
    exec_type: str = "Trade"

    def to_bybit(self) -> dict[str, Any]:
        order, steps = self.order, self.order.steps
        return {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "side": order.side,
            "qty": fmt_step(order.qty, steps.qty),
            "orderPrice": price_text(order.price, steps.tick),
            "orderType": order.order_type,
            "execType": self.exec_type,
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
