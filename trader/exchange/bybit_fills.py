"""What Bybit told us about our orders: their states and executions, by order id, from the
private stream's pushes or REST reads in the same shapes; and when an order's fill is whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from trader.errors import OrderRejected
from trader.exchange.bybit_messages import Execution, OrderUpdate, close_reason, fill_from
from trader.models import CloseReason, Fill

KEPT_ORDERS = 500  # orders whose pushes are kept, newest last


class Pushes:
    """The recent orders and executions the stream (or REST) reported, by order id."""

    def __init__(self) -> None:
        self.orders: OrderedDict[str, OrderUpdate] = OrderedDict()
        self.executions: dict[str, dict[str, Execution]] = {}
        self.by_link: dict[str, str] = {}  # orderLinkId → orderId
        self._changed = asyncio.Event()

    def add_order(self, update: OrderUpdate) -> None:
        known = self.orders.get(update.order_id)
        if known is not None and known.terminal:
            if not update.terminal:
                return  # an older snapshot (REST) arriving after the final push
            if update.closed_pnl is None and known.closed_pnl is not None:
                update = replace(update, closed_pnl=known.closed_pnl)
        self.orders[update.order_id] = update
        self.orders.move_to_end(update.order_id)
        if update.link_id:
            self.by_link[update.link_id] = update.order_id
        self._forget_old()
        self._wake()

    def add_execution(self, execution: Execution) -> None:
        self.executions.setdefault(execution.order_id, {})[execution.exec_id] = execution
        if execution.link_id:
            self.by_link[execution.link_id] = execution.order_id
        self._wake()

    def _forget_old(self) -> None:
        while len(self.orders) > KEPT_ORDERS:
            order_id, update = self.orders.popitem(last=False)
            self.executions.pop(order_id, None)
            self.by_link.pop(update.link_id, None)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, timeout: float) -> None:  # noqa: ASYNC109
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def fill_of(self, order_id: str) -> Fill | None:
        """The order's whole fill once it is final and all its executions are in; raises
        ``OrderRejected`` for an order that ended with nothing filled."""
        update = self.orders.get(order_id)
        if update is None or not update.terminal:
            return None
        executions = list(self.executions.get(order_id, {}).values())
        if update.cum_exec_qty == 0:
            reason = update.reject_reason or "no reason given"
            raise OrderRejected(f"Bybit ended the order {update.status}: {reason}")
        if sum((e.qty for e in executions), Decimal(0)) < update.cum_exec_qty:
            return None  # executions still on their way
        return fill_from(executions, update.link_id, update.closed_pnl)

    def last_close(self, symbol: str, since: datetime) -> tuple[Fill, CloseReason] | None:
        """The newest final order that closed ``symbol`` after ``since``, complete, with why
        it closed."""
        for order_id in reversed(self.orders):
            update = self.orders[order_id]
            executions = list(self.executions.get(order_id, {}).values())
            closing = [e for e in executions if e.closed_size > 0 and e.at >= since]
            if update.symbol != symbol or not closing:
                continue
            fill = self.fill_of(order_id)
            if fill is None:
                return None
            return fill, close_reason(closing[0])
        return None
