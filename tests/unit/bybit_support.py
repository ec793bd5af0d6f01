"""Helpers shared by the unit tests of the Bybit adapter: a private execution row and an order
row as the v5 API sends them, pybit's two kinds of failure, and what one attempt of a call that
raised turns into.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pybit.exceptions import FailedRequestError, InvalidRequestError

from trader.errors import ExchangeError
from trader.exchange import bybit_wire

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # the execTime of ``execution_row``


def execution_row(**overrides: Any) -> dict[str, Any]:
    """A TP's execution closing a SOLUSDT long, at ``T0``; ``overrides`` replace fields."""
    row = {
        "category": "linear",
        "symbol": "SOLUSDT",
        "orderId": "o-1",
        "orderLinkId": "sig-1",
        "side": "Sell",
        "execId": "e-1",
        "execPrice": "192.88",
        "execQty": "26.3",
        "execFee": "2.78996560",
        "execType": "Trade",
        "execTime": str(int(T0.timestamp() * 1000)),
        "closedSize": "26.3",
        "stopOrderType": "TakeProfit",
    }
    return {**row, **overrides}


def order_row() -> dict[str, Any]:
    """The fields every order row has: a new order that has filled nothing."""
    return {"orderId": "o", "symbol": "SOLUSDT", "orderStatus": "New", "cumExecQty": "0"}


def refused(code: int) -> InvalidRequestError:
    """Bybit's answer with a non-zero retCode, as pybit raises it."""
    return InvalidRequestError(
        request="POST /v5/order/create: {secret stuff}",
        message="refused",
        status_code=code,
        time="00:00:00",
        resp_headers={},
    )


def failed(status: int) -> FailedRequestError:
    """An HTTP status other than 200, as pybit raises it."""
    return FailedRequestError(
        request="GET /x: {secret stuff}",
        message="refused",
        status_code=status,
        time="0",
        resp_headers={},
    )


async def one_attempt(error: Exception, *, order: bool) -> ExchangeError:
    """The error one attempt of a call (an order's, or a read's) that raised ``error`` turns
    into, retries aside."""

    def call() -> None:
        raise error

    with pytest.raises(ExchangeError) as caught:
        await bybit_wire._call_once("order", call, order, {})
    return caught.value
