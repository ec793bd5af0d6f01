"""Bybit's private messages parsed into ours, the error taxonomy of pybit's failures, and the
reconciliation diff: pure functions, no network."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.bybit_support import (
    T0,
    execution_row,
    failed,
    one_attempt,
    order_row,
    refused,
)
from trader import reconcile
from trader.errors import (
    Banned,
    ExchangeError,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    Retryable,
)
from trader.exchange import bybit_wire
from trader.exchange.base import VenuePosition
from trader.exchange.bybit_messages import (
    close_reason,
    fill_from,
    parse_execution,
    parse_order,
    parse_position,
)
from trader.models import CloseReason, Fill, Position, Side
from trader.orders import MAX_LINK_ID, exit_link_id
from trader.pnl import close_trade


def test_an_execution_keeps_bybits_exact_figures() -> None:
    execution = parse_execution(execution_row())
    assert execution is not None
    assert (execution.price, execution.qty, execution.fee) == (
        Decimal("192.88"),
        Decimal("26.3"),
        Decimal("2.78996560"),
    )
    assert execution.closed_size == Decimal("26.3")
    assert execution.at == T0
    assert execution.side is Side.SELL


def test_a_funding_execution_is_not_a_trade() -> None:
    assert parse_execution(execution_row(execType="Funding")) is None


@pytest.mark.parametrize("bad", [1.5, "abc", "NaN", None])
def test_a_malformed_number_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ExchangeError, match="execPrice"):
        parse_execution(execution_row(execPrice=bad))


def test_an_order_carries_its_closed_pnl_and_state() -> None:
    order = parse_order(
        {
            "orderId": "o-1",
            "orderLinkId": "",
            "symbol": "SOLUSDT",
            "orderStatus": "Filled",
            "cumExecQty": "26.3",
            "closedPnl": "69.93853440",
            "rejectReason": "EC_NoError",
        }
    )
    assert order.terminal
    assert order.closed_pnl == Decimal("69.93853440")
    assert not parse_order({**order_row(), "orderStatus": "Untriggered"}).terminal
    assert parse_order({**order_row(), "closedPnl": ""}).closed_pnl is None


def test_a_flat_position_has_no_side_and_no_protection() -> None:
    flat = parse_position(
        {
            "symbol": "SOLUSDT",
            "side": "",
            "size": "0",
            "avgPrice": "0",
            "stopLoss": "",
            "takeProfit": "0",
        }
    )
    assert (flat.side, flat.qty, flat.stop_loss, flat.take_profit) == (None, 0, None, None)


@given(
    parts=st.lists(
        st.tuples(
            st.decimals("0.1", "100", places=1),
            st.decimals("1", "1000", places=2),
            st.decimals("0", "1", places=8),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_a_fill_sums_quantities_and_fees_and_weights_the_price(
    parts: list[tuple[Decimal, Decimal, Decimal]],
) -> None:
    executions = []
    for i, (qty, price, fee) in enumerate(parts):
        parsed = parse_execution(
            execution_row(execId=f"e{i}", execQty=str(qty), execPrice=str(price), execFee=str(fee))
        )
        assert parsed is not None
        executions.append(parsed)
    fill = fill_from(executions, "sig-1")
    assert fill is not None
    assert fill.qty == sum(q for q, _, _ in parts)
    assert fill.fee == sum(f for _, _, f in parts)
    # The average is a division: exact to Decimal's 28 digits.
    assert abs(fill.price * fill.qty - sum(q * p for q, p, _ in parts)) < Decimal("1e-20")
    assert min(p for _, p, _ in parts) <= fill.price <= max(p for _, p, _ in parts)


@given(st.permutations([f"e{i}" for i in range(5)]), st.integers(min_value=0, max_value=3))
def test_a_fill_has_one_id_whatever_order_its_executions_came_in(
    order: list[str], same_time_from: int
) -> None:
    """Pushes arrive oldest first, REST lists newest first, and executions of one market
    order often share an execTime: the fill's id (what stops it being booked twice) must not
    depend on that."""
    ms = int(T0.timestamp() * 1000)
    rows = {
        # e{same_time_from}..e4 share the newest execTime.
        f"e{i}": execution_row(execId=f"e{i}", execTime=str(ms + min(i, same_time_from)))
        for i in range(5)
    }
    executions = [parse_execution(rows[exec_id]) for exec_id in order]
    ordered = [parse_execution(rows[f"e{i}"]) for i in range(5)]
    assert all(e is not None for e in executions + ordered)
    first = fill_from([e for e in executions if e is not None], "sig-1")
    second = fill_from(list(reversed([e for e in ordered if e is not None])), "sig-1")
    assert first is not None
    assert second is not None
    assert first.exec_id == second.exec_id


def test_the_venues_closed_pnl_is_the_trades_net_pnl() -> None:
    position = _position()
    exit_fill = Fill(
        "ex", "SOLUSDT", Side.SELL, Decimal("26.3"), Decimal("192.88"), Decimal("2.79"), T0
    )
    computed = close_trade(position, exit_fill, CloseReason.TAKE_PROFIT)
    assert computed.net_pnl == computed.gross_pnl - computed.fees
    told = close_trade(
        position,
        Fill(
            "ex",
            "SOLUSDT",
            Side.SELL,
            Decimal("26.3"),
            Decimal("192.88"),
            Decimal("2.79"),
            T0,
            closed_pnl=Decimal("69.90"),
        ),
        CloseReason.TAKE_PROFIT,
    )
    assert told.net_pnl == Decimal("69.90")
    assert told.gross_pnl == computed.gross_pnl


def _position(symbol: str = "SOLUSDT", side: Side = Side.BUY, qty: str = "26.3") -> Position:
    return Position(
        signal_id=f"s-{symbol}",
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        entry_price=Decimal("190.01"),
        leverage=50,
        margin=Decimal("99.95"),
        stop_loss=Decimal("188.49"),
        take_profit=Decimal("192.86"),
        entry_fee=Decimal("2.75"),
        opened_at=T0,
        expires_at=T0,
    )


def _venue(symbol: str, side: Side | None = Side.BUY, qty: str = "26.3") -> VenuePosition:
    return VenuePosition(symbol, side, Decimal(qty), Decimal("190.01"), Decimal(50), None, None, T0)


def test_the_diff_names_vanished_unknown_and_mismatched_positions_and_skips_busy_ones() -> None:
    recorded = {s: _position(s) for s in ("SOLUSDT", "BTCUSDT", "ETHUSDT", "XRPUSDT")}
    venue = {
        "SOLUSDT": _venue("SOLUSDT"),  # agrees
        "ETHUSDT": _venue("ETHUSDT", qty="10"),  # resized by hand
        "DOGEUSDT": _venue("DOGEUSDT"),  # unknown
        "ADAUSDT": _venue("ADAUSDT"),  # unknown, but an order is in flight for it
    }
    found = reconcile.diff(recorded, venue, busy={"XRPUSDT", "ADAUSDT"})
    assert [p.symbol for p in found.vanished] == ["BTCUSDT"]
    assert [v.symbol for v in found.unknown] == ["DOGEUSDT"]
    assert [(p.symbol, v.qty) for p, v in found.mismatched] == [("ETHUSDT", Decimal(10))]


def test_an_adopted_position_has_no_ttl_and_says_when_it_has_no_stop() -> None:
    adopted = reconcile.adopted(_venue("BTCUSDT", Side.SELL, "0.01"), T0)
    assert adopted.expires_at == reconcile.NO_EXPIRY
    assert adopted.stop_loss == 0
    assert "NO stop-loss" in reconcile.said_adopted(adopted)


# --- pybit's failures → our taxonomy ------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "order", "expected"),
    [
        (refused(10001), True, OrderRejected),
        (refused(110007), True, OrderRejected),
        (refused(10001), False, ExchangeError),
        (refused(10006), True, RateLimited),
        (refused(10002), True, Retryable),
        (refused(10016), False, Retryable),
        (failed(403), False, Banned),  # an IP ban (tests/unit/test_bybit_wire.py)
        (failed(502), False, Retryable),
        (failed(502), True, OutcomeUnknown),
        (failed(404), False, ExchangeError),
        (TimeoutError(), True, OutcomeUnknown),
        (ConnectionRefusedError(), False, Retryable),
    ],
)
async def test_each_failure_lands_in_its_class(
    error: Exception, order: bool, expected: type[ExchangeError]
) -> None:
    # One attempt's classification; the retries around it are tested below.
    caught = await one_attempt(error, order=order)
    assert type(caught) is expected
    assert "secret" not in str(caught)  # pybit's request line never leaks


async def test_retryable_answers_are_retried_and_an_unknown_outcome_never_is() -> None:
    answers: list[Exception | None] = [refused(10016), failed(503), None]

    def flaky() -> str:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return "ok"

    assert await bybit_wire.call_pybit("wallet", flaky) == "ok"
    assert answers == []

    sent = 0

    def times_out() -> None:
        nonlocal sent
        sent += 1
        raise TimeoutError

    with pytest.raises(OutcomeUnknown):
        await bybit_wire.call_pybit("order", times_out, order=True)
    assert sent == 1


def test_a_rate_limit_waits_for_bybits_reset() -> None:
    error = RateLimited("slow down", code=10006, retry_after=3.0)
    assert error.retry_after == 3.0
    assert isinstance(error, Retryable)


def test_a_liquidation_is_a_close_with_its_own_reason() -> None:
    liquidation = parse_execution(execution_row(execType="BustTrade", stopOrderType=""))
    assert liquidation is not None
    assert close_reason(liquidation) is CloseReason.LIQUIDATION
    take_profit = parse_execution(execution_row())
    assert take_profit is not None
    assert close_reason(take_profit) is CloseReason.TAKE_PROFIT
    assert parse_execution(execution_row(category="spot")) is None


@given(attempt=st.integers(0, 10**6))
def test_every_exit_attempt_has_its_own_link_id_within_bybits_limit(attempt: int) -> None:
    link = exit_link_id("signal-1", attempt)
    assert len(link) <= MAX_LINK_ID
    assert link != exit_link_id("signal-1", attempt + 1)
    assert link.replace("-", "").isalnum()


# --- a position's open time ------------------------------------------------------------------


def _ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


@given(created=st.integers(1, 2**45), later=st.integers(0, 2**40))
def test_a_position_opened_at_its_open_time_not_when_its_symbol_was_first_traded(
    created: int, later: int
) -> None:
    row = {"symbol": "SOLUSDT", "side": "Buy", "size": "1", "avgPrice": "190"}
    position = parse_position({**row, "createdTime": str(created), "openTime": created + later})
    assert position is not None
    assert position.opened_at == _ms(created + later)
    assert position.first_created_at == _ms(created)


@pytest.mark.parametrize("open_time", [None, "", "0", 0])
def test_a_position_bybit_gives_no_open_time_has_none(open_time: object) -> None:
    row = {"symbol": "SOLUSDT", "side": "Sell", "size": "2", "createdTime": "1676538056258"}
    position = parse_position({**row, "openTime": open_time})
    assert position is not None
    assert position.opened_at is None
    assert position.first_created_at == _ms(1676538056258)
