"""What Bybit told us about our orders: their states and executions, by order id, from the
private stream's pushes or REST reads in the same shapes; and when an order's fill is whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Set
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
        fill = fill_from(executions, update.link_id, update.closed_pnl)
        if fill is None or update.trigger_price is None:
            return fill
        return replace(fill, trigger_price=update.trigger_price)  # a TP/SL: its level

    def closes_since(
        self, symbol: str, since: datetime, booked: Set[str], *, orderless: bool
    ) -> list[tuple[str, Fill, CloseReason]] | None:
        """Every exit of ``symbol`` after ``since`` not in ``booked``, oldest first, as
        (key, fill, why): one per order, and one per execution Bybit made without an order
        (a delivery) when ``orderless`` (else they wait for their order's push). None while
        one of them is still incomplete (its order not final, executions on their way)."""
        found: list[tuple[datetime, str, Fill, CloseReason]] = []
        for order_id, by_exec in self.executions.items():
            closing = [
                e
                for e in by_exec.values()
                if e.symbol == symbol and e.closed_size > 0 and e.at >= since
            ]
            if not closing:
                continue
            if order_id in self.orders:
                if order_id in booked:
                    continue
                try:
                    fill = self.fill_of(order_id)
                except OrderRejected:
                    continue  # ended with nothing filled: closed nothing
                if fill is None:
                    return None
                reason = close_reason(closing[0], self.orders[order_id])
                found.append((fill.at, order_id, fill, reason))
            elif orderless or not order_id:
                for execution in closing:  # no order behind them: each stands alone
                    key = f"exec:{execution.exec_id}"
                    one = fill_from([execution], execution.link_id)
                    if key not in booked and one is not None:
                        found.append((execution.at, key, one, close_reason(execution)))
            else:
                return None  # its order's push is on its way
        found.sort(key=lambda item: item[0])
        return [(key, fill, reason) for _, key, fill, reason in found]
