"""A position's stops on Bybit: the stop-loss, the trailing stop and partial take-profits,
each set through ``/v5/position/trading-stop``, and the partial take-profits it holds (its
open conditional orders), read back for reconciliation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pybit.unified_trading import HTTP

from trader.exchange.bybit_messages import CATEGORY, OrderUpdate, parse_order, parse_rows
from trader.exchange.bybit_orders import wire
from trader.exchange.bybit_wire import TPSL_NOT_MODIFIED, call_pybit, read_pages
from trader.models import TakeProfitLevel, TrailingStop

ORDER_PAGE = 50  # Bybit's most open orders a page


class BybitStops:
    """The trading-stop calls, and the partial take-profits read back."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    async def set_stop_loss(self, symbol: str, price: Decimal) -> None:
        """The stop-loss of the whole position, through ``/v5/position/trading-stop``;
        Bybit's "not modified" (34040) means it is there already."""
        await call_pybit(
            "stop-loss",
            self._http.set_trading_stop,
            unchanged=TPSL_NOT_MODIFIED,
            category=CATEGORY,
            symbol=symbol,
            stopLoss=wire(price),
            tpslMode="Full",
            slTriggerBy="LastPrice",
            positionIdx=0,
        )

    async def set_trailing_stop(self, symbol: str, trailing: TrailingStop) -> None:
        """The position's trailing stop (Full: all of it), through trading-stop; Bybit holds it
        and its state from then on. Its "not modified" (34040) means it is there already."""
        params: dict[str, Any] = {"trailingStop": wire(trailing.distance)}
        if trailing.active_price is not None:
            params["activePrice"] = wire(trailing.active_price)
        await call_pybit(
            "trailing stop",
            self._http.set_trading_stop,
            unchanged=TPSL_NOT_MODIFIED,
            category=CATEGORY,
            symbol=symbol,
            tpslMode="Full",
            positionIdx=0,
            **params,
        )

    async def add_take_profit(self, symbol: str, price: Decimal, qty: Decimal) -> None:
        """One partial take-profit (``tpslMode=Partial``: a PartialTakeProfit order of
        ``qty``), through trading-stop; each call adds one, up to 20. Like an order, a call
        without an answer is not re-sent (``OutcomeUnknown``): a second would add another."""
        await call_pybit(
            "take-profit",
            self._http.set_trading_stop,
            order=True,
            category=CATEGORY,
            symbol=symbol,
            tpslMode="Partial",
            takeProfit=wire(price),
            tpSize=wire(qty),
            tpTriggerBy="LastPrice",
            tpOrderType="Market",
            positionIdx=0,
        )

    async def take_profits(self, symbol: str) -> list[TakeProfitLevel]:
        """The partial take-profits Bybit holds for ``symbol``: its open conditional orders
        (``orderFilter=StopOrder``) of type ``PartialTakeProfit``, in price order."""
        rows = await read_pages(
            "take-profit orders",
            self._http.get_open_orders,
            limit=ORDER_PAGE,
            category=CATEGORY,
            symbol=symbol,
            orderFilter="StopOrder",
        )
        orders: list[OrderUpdate] = parse_rows(rows, parse_order)
        held = [
            TakeProfitLevel(order.trigger_price, order.qty)
            for order in orders
            if order.stop_order_type == "PartialTakeProfit"
            and order.trigger_price is not None
            and order.qty is not None
        ]
        return sorted(held, key=lambda level: level.price)
