"""Our orders on Bybit: sending one exactly once, and learning its whole fill from the private
stream's pushes or, when they do not come, by REST; and reading back the exits of a position.

An order's fill is complete when its ``order`` push (or REST row) is final and its executions
add up to its ``cumExecQty``; an order that closed something carries Bybit's ``closedPnl``.
An order that got no answer is looked up by ``orderLinkId`` and never sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Set
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pybit.unified_trading import HTTP

from trader.errors import ExchangeError, OrderRejected, OutcomeUnknown
from trader.exchange.bybit_fills import Pushes
from trader.exchange.bybit_messages import (
    CATEGORY,
    OrderUpdate,
    parse_closed_pnl,
    parse_execution,
    parse_order,
    parse_rows,
    rows_of,
)
from trader.exchange.bybit_wire import call_pybit, read_pages
from trader.models import CloseReason, Fill

log = logging.getLogger(__name__)

DUPLICATE_LINK_ID = 110072  # an order with this orderLinkId exists: a send that got through
STREAM_GRACE = 1.0  # seconds to wait for pushes before asking REST
REST_POLL = 0.25  # seconds between REST reads of an order's fill
# Page sizes: Bybit's maxima, so that a list is read in as few round trips as it allows.
EXECUTION_PAGE = 100
CLOSED_PNL_PAGE = 100
CLOSED_PNL_PAGES = 5
LIST_WINDOW = timedelta(days=7)  # Bybit's longest startTime..endTime of a history list

Exit = tuple[str, Fill, CloseReason]  # (what it is booked under, the fill, why)


class BybitOrders:
    """Sending orders and reading their fills; what Bybit said of them is kept in ``pushes``."""

    def __init__(
        self,
        http: HTTP,
        pushes: Pushes,
        *,
        fill_timeout: float,
        stream_healthy: Callable[[], bool],
    ) -> None:
        self._http = http
        self._pushes = pushes
        self._fill_timeout = fill_timeout
        self._stream_healthy = stream_healthy

    async def place(self, params: dict[str, Any], link_id: str) -> None:
        """Send an order once. After no answer it is looked up by ``orderLinkId``: found
        means accepted, and it is never sent again."""
        try:
            await call_pybit("order", self._http.place_order, order=True, **params)
        except (OutcomeUnknown, OrderRejected) as exc:
            if isinstance(exc, OrderRejected) and exc.code != DUPLICATE_LINK_ID:
                raise
            # No answer, or "duplicate orderLinkId" (an earlier try got through after all).
            log.warning("order %s: %s; looking it up by orderLinkId", link_id, exc)
            try:
                found = await self._order_row(link_id=link_id)
            except ExchangeError as lookup:
                raise OutcomeUnknown(f"{exc}; the lookup failed too: {lookup}") from None
            if found is None:
                raise OutcomeUnknown(str(exc), code=exc.code) from None
            log.info("order %s was accepted after all", link_id)

    async def fill_of_sent(self, link_id: str, symbol: str) -> Fill:
        """The fill of an order Bybit accepted. From here on any failure but a refusal means
        the outcome is unknown: the order may have filled, so it must be looked up, never
        taken as not placed."""
        try:
            return await self._await_fill(link_id, symbol)
        except (OrderRejected, OutcomeUnknown):
            raise
        except ExchangeError as exc:
            raise OutcomeUnknown(f"order {link_id} for {symbol} was sent; {exc}") from None

    def order_id(self, link_id: str) -> str | None:
        return self._pushes.by_link.get(link_id)

    async def find(self, link_id: str) -> Fill | None:
        """The fill of the order sent as ``link_id``; None if Bybit has no such order or it
        filled nothing."""
        try:
            fill = await self._rest_fill(link_id)
        except OrderRejected:
            return None  # it ended with nothing filled
        if fill is None and link_id in self._pushes.by_link:
            # Bybit has the order but it has not finished: not "never placed".
            raise ExchangeError(f"order {link_id} has not finished on Bybit yet")
        return fill

    async def exits(self, symbol: str, since: datetime, booked: Set[str]) -> list[Exit]:
        """Exits of ``symbol`` after ``since`` not in ``booked``, read by REST (every page
        back to ``since``) and fed through the same bookkeeping as pushes; each order read
        with its closed PnL."""
        rows: list[Mapping[str, Any]] = []
        for window in _windows(since):  # Bybit lists at most 7 days per read
            rows += await read_pages(
                "executions",
                self._http.get_executions,
                limit=EXECUTION_PAGE,
                until=lambda row: _ms_of(row, "execTime") < since,
                category=CATEGORY,
                symbol=symbol,
                **window,
            )
        closing = [
            e for e in parse_rows(rows, parse_execution) if e.closed_size > 0 and e.at >= since
        ]
        for execution in closing:
            self._pushes.add_execution(execution)
        for order_id in dict.fromkeys(e.order_id for e in closing if e.order_id):
            if order_id in booked:
                continue
            update = await self._order_row(order_id=order_id)
            if update is not None:
                await self._book_order(update)
        return self._pushes.closes_since(symbol, since, booked, orderless=True) or []

    async def _order_row(self, *, link_id: str = "", order_id: str = "") -> OrderUpdate | None:
        """The order by ``orderLinkId`` or else ``orderId``: recent ones, then the order
        history (Bybit's realtime list can lose closed orders after a restart of its own)."""
        key: dict[str, Any] = {"orderLinkId": link_id} if link_id else {"orderId": order_id}
        for what, call in (
            ("order lookup", self._http.get_open_orders),
            ("order history", self._http.get_order_history),
        ):
            response = await call_pybit(what, call, category=CATEGORY, **key)
            orders = parse_rows(rows_of(response), parse_order)
            if orders:
                return orders[0]  # type: ignore[no-any-return]
        return None

    async def _await_fill(self, link_id: str, symbol: str) -> Fill:
        """The order's whole fill: from the stream's pushes, or read back by REST when they
        do not come (the stream is down, or a push was lost)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._fill_timeout
        rest_after = loop.time() + (STREAM_GRACE if self._stream_healthy() else 0.0)
        while True:
            order_id = self._pushes.by_link.get(link_id)
            fill = self._pushes.fill_of(order_id) if order_id else None
            if fill is None and loop.time() >= rest_after:
                try:
                    fill = await self._rest_fill(link_id)
                except OrderRejected:
                    raise
                except ExchangeError as exc:  # keep trying until the deadline
                    log.warning("reading the fill of %s failed: %s", link_id, exc)
            if fill is not None:
                return fill
            if loop.time() >= deadline:
                raise OutcomeUnknown(f"order {link_id} for {symbol} shows no fill yet")
            await self._pushes.changed(REST_POLL if loop.time() >= rest_after else STREAM_GRACE)

    async def _rest_fill(self, link_id: str) -> Fill | None:
        """The order and its executions by REST, fed through the same bookkeeping."""
        update = await self._order_row(link_id=link_id)
        if update is None:
            return None
        rows = await read_pages(
            "executions",
            self._http.get_executions,
            limit=EXECUTION_PAGE,
            category=CATEGORY,
            orderLinkId=link_id,
        )
        for execution in parse_rows(rows, parse_execution):
            self._pushes.add_execution(execution)
        return await self._book_order(update)

    async def _book_order(self, update: OrderUpdate) -> Fill | None:
        """Record an order read by REST (its executions are in already) and return its fill:
        a final order that closed something gets Bybit's closed PnL first."""
        executions = self._pushes.executions.get(update.order_id, {}).values()
        closing = any(e.closed_size > 0 for e in executions)
        if closing and update.closed_pnl is None and update.terminal and update.cum_exec_qty > 0:
            order_id = update.order_id
            rows = await read_pages(
                "closed PnL",
                self._http.get_closed_pnl,
                limit=CLOSED_PNL_PAGE,
                until=lambda row: str(row.get("orderId")) == order_id,
                max_pages=CLOSED_PNL_PAGES,  # a row not there yet is not worth 50 calls
                category=CATEGORY,
                symbol=update.symbol,
            )
            update = replace(update, closed_pnl=parse_closed_pnl(rows, order_id))
        self._pushes.add_order(update)
        return self._pushes.fill_of(update.order_id)


def _ms_of(row: Mapping[str, Any], name: str) -> datetime:
    """A row's time field, for paging back to a moment; a bad one reads as "now"."""
    try:
        return datetime.fromtimestamp(int(row[name]) / 1000, UTC)
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC)


def _windows(since: datetime) -> list[dict[str, int]]:
    """The reads that cover ``since`` until now: none needed for the last 7 days (Bybit's
    default), else 7-day windows from ``since``."""
    now = datetime.now(UTC)
    if now - since <= LIST_WINDOW:
        return [{}]
    windows = []
    start = since
    while start < now:
        end = min(start + LIST_WINDOW, now)
        windows.append(
            {"startTime": int(start.timestamp() * 1000), "endTime": int(end.timestamp() * 1000)}
        )
        start = end
    return windows


def wire(value: Decimal) -> str:
    """A number as Bybit takes it: plain digits, no exponent, no trailing zeros."""
    return f"{value.normalize():f}"
