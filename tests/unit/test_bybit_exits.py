"""Exits and fills as real Bybit reports them: a market order cut at its price band that filled
in part, a delivery with no order behind it, and the name of each exit Bybit makes itself."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.bybit_support import execution_row, order_row
from trader.errors import ExchangeError
from trader.exchange.bybit_messages import close_reason, parse_execution, parse_order
from trader.models import CloseReason

ORDER_STATUSES = [
    "New",
    "PartiallyFilled",
    "Untriggered",
    "Triggered",
    "Filled",
    "Cancelled",
    "PartiallyFilledCanceled",
    "Rejected",
    "Deactivated",
]


@given(status=st.sampled_from(ORDER_STATUSES), filled=st.decimals("0", "1000", places=3))
def test_a_final_order_that_filled_in_part_is_a_partial_fill_never_a_rejection(
    status: str, filled: Decimal
) -> None:
    order = parse_order({**order_row(), "orderStatus": status, "cumExecQty": str(filled)})
    assert order is not None
    ended_short = status not in ("New", "PartiallyFilled", "Untriggered", "Triggered", "Filled")
    assert order.partially_filled == (ended_short and filled > 0)
    assert not (order.partially_filled and not order.terminal)


def test_an_ioc_market_order_cut_at_its_price_band_keeps_what_filled() -> None:
    order = parse_order(
        {
            **order_row(),
            "orderType": "Market",
            "orderStatus": "Cancelled",
            "cumExecQty": "0.4",
            "leavesQty": "0",
            "avgPrice": "190.12",
            "cumExecFee": "0.04182640",
            "cancelType": "UNKNOWN",
            "createType": "CreateByUser",
            "reduceOnly": True,
        }
    )
    assert order is not None
    assert order.partially_filled
    assert (order.cum_exec_qty, order.leaves_qty, order.avg_price, order.cum_exec_fee) == (
        Decimal("0.4"),
        Decimal(0),
        Decimal("190.12"),
        Decimal("0.04182640"),
    )
    assert (order.order_type, order.reduce_only, order.create_type) == (
        "Market",
        True,
        "CreateByUser",
    )


def test_a_delivery_has_no_order_behind_it_and_still_closes_the_position() -> None:
    row = execution_row(execType="Delivery", orderId="", orderLinkId="", stopOrderType="")
    delivery = parse_execution({**row, "createType": "CreateBySettle"})
    assert delivery is not None
    assert delivery.order_id == ""
    assert close_reason(delivery) is CloseReason.DELIVERY
    without_id = {k: v for k, v in row.items() if k != "orderId"}
    assert parse_execution(without_id) is not None
    with pytest.raises(ExchangeError, match="orderId"):
        parse_execution({**without_id, "execType": "Trade"})


@pytest.mark.parametrize(
    ("exec_type", "create_type", "stop_type", "order_create", "order_stop", "reason"),
    [
        ("BustTrade", "", "UNKNOWN", "", "", CloseReason.LIQUIDATION),
        ("Trade", "CreateByLiq", "UNKNOWN", "", "", CloseReason.LIQUIDATION),
        ("Trade", "", "UNKNOWN", "CreateByLiq", "", CloseReason.LIQUIDATION),
        ("Trade", "CreateByTakeOver_PassThrough", "", "", "", CloseReason.LIQUIDATION),
        ("AdlTrade", "", "UNKNOWN", "", "", CloseReason.ADL),
        ("Trade", "CreateByAdl_PassThrough", "", "", "", CloseReason.ADL),
        ("Delivery", "", "", "", "", CloseReason.DELIVERY),
        ("Trade", "CreateBySettle", "", "", "", CloseReason.DELIVERY),
        ("Trade", "CreateByStopLoss", "StopLoss", "", "", CloseReason.STOP_LOSS),
        ("Trade", "", "PartialStopLoss", "", "", CloseReason.STOP_LOSS),
        ("Trade", "", "UNKNOWN", "", "StopLoss", CloseReason.STOP_LOSS),
        ("Trade", "", "TakeProfit", "", "", CloseReason.TAKE_PROFIT),
        ("Trade", "CreateByPartialTakeProfit", "", "", "", CloseReason.TAKE_PROFIT),
        ("Trade", "", "TrailingStop", "", "", CloseReason.TRAILING_STOP),
        ("Trade", "", "", "CreateByTrailingStop", "", CloseReason.TRAILING_STOP),
        ("Trade", "CreateByUser", "UNKNOWN", "CreateByUser", "", CloseReason.EXTERNAL),
        ("Trade", "CreateByClosing", "", "", "", CloseReason.EXTERNAL),
    ],
)
def test_each_exit_bybit_makes_is_named(
    exec_type: str,
    create_type: str,
    stop_type: str,
    order_create: str,
    order_stop: str,
    reason: CloseReason,
) -> None:
    execution = parse_execution(
        execution_row(execType=exec_type, createType=create_type, stopOrderType=stop_type)
    )
    order = parse_order(
        {
            **order_row(),
            "orderStatus": "Filled",
            "createType": order_create,
            "stopOrderType": order_stop,
        }
    )
    assert execution is not None
    assert close_reason(execution, order) is reason
