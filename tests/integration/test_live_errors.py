"""Live mode against the fake Bybit (real pybit, REST and the private stream) when answers
fail or go missing: a stream gap with a fill in it, and the error taxonomy (10001, 10006,
10002, 5xx, an order whose outcome is unknown).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.bybit import FakeBybit
from tests.integration.live_support import CREATE, StartLive, live_engine, open_sol, start_live
from tests.integration.support import append_signal
from trader.clock import ManualClock
from trader.events import OrderFailed, PositionClosed, PositionOpened, Reconciled
from trader.models import CloseReason, Signal
from trader.orders import entry_link_id
from trader.ports import OrderStatus

__all__ = ["start_live"]  # fixtures


# --- the stream ----------------------------------------------------------------------------------


async def test_a_fill_during_a_stream_gap_is_recovered_by_reconciliation(
    workdir: Path, live_bybit: FakeBybit, clock: ManualClock
) -> None:
    """No REST polling here (an hour apart): only the reconciliation after the reconnect
    can find the TP that hit while the stream was down."""
    engine, exchange, repo, events = await live_engine(
        workdir, live_bybit, clock, poll_interval=3600
    )
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await engine.start()
    try:
        await engine.start_trading()
        await engine.handle_record(
            Signal("gap-1", clock.now(), "SOLUSDT", "BUY", Decimal("0.8"), ttl_minutes=15)
        )
        await events.next(PositionOpened)
        live_bybit.refuse_private_streams = True
        await live_bybit.drop_private_streams()
        await live_bybit.wait_until(lambda: not exchange.stream_healthy)
        await live_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
        assert live_bybit.position("SOLUSDT") is None  # closed on Bybit, pushed to nobody
        assert engine.open_positions() != []
        live_bybit.refuse_private_streams = False
        closed = await events.next(PositionClosed, timeout=10)
        assert isinstance(closed, PositionClosed)
        assert closed.trade.reason is CloseReason.TAKE_PROFIT
        assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
        report = await events.next(Reconciled)
        assert isinstance(report, Reconciled)
        assert report.trigger == "the private stream reconnected"
        assert engine.open_positions() == []
    finally:
        await engine.stop()
        await repo.close()


async def test_while_the_stream_is_down_rest_polling_covers_closes(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    live_bybit.refuse_private_streams = True
    await live_bybit.drop_private_streams(abrupt=True)
    await live_bybit.set_ticker("SOLUSDT", last="188.40", bid="188.38", ask="188.42")
    closed = await events.next(PositionClosed)  # stream still refused: REST found it
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.STOP_LOSS
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    assert live_bybit.authenticated_private_connections() == 0


# --- errors --------------------------------------------------------------------------------------


async def test_a_parameter_error_is_reported_with_bybits_message_and_not_retried(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    await runtime.engine.start_trading()
    live_bybit.fail_next(CREATE, ret_code=10001, ret_msg="params error: qty invalid")
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="bad")
    failed = await events.next(OrderFailed)
    assert isinstance(failed, OrderFailed)
    assert "params error: qty invalid" in failed.reason
    assert "10001" in failed.reason
    assert len(live_bybit.requests_to(CREATE)) == 1
    stored = await runtime.repo.get_order(entry_link_id("bad"))
    assert stored is not None
    assert stored.status is OrderStatus.REJECTED


async def test_a_rate_limited_order_is_sent_again_after_the_reset_and_opens_once(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    live_bybit.fail_next(CREATE, ret_code=10006, ret_msg="Too many visits!")
    await open_sol(runtime, events, live_bybit, workdir, clock)
    assert len(live_bybit.requests_to(CREATE)) == 2
    assert len([o for o in live_bybit.orders if o.order_link_id == entry_link_id("s1")]) == 1


@pytest.mark.parametrize(
    ("path", "fault"),
    [
        ("/v5/account/wallet-balance", {"http_status": 502, "times": 2}),
        ("/v5/account/wallet-balance", {"ret_code": 10016, "ret_msg": "server error"}),
        ("/v5/position/set-leverage", {"ret_code": 10002, "ret_msg": "invalid timestamp"}),
    ],
)
async def test_retryable_answers_are_retried_with_back_off(
    start_live: StartLive,
    live_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
    path: str,
    fault: dict[str, object],
) -> None:
    runtime, events = await start_live()
    before = len(live_bybit.requests_to(path))
    live_bybit.fail_next(path, **fault)  # type: ignore[arg-type]
    if "leverage" in path:
        await open_sol(runtime, events, live_bybit, workdir, clock)
    else:
        status = await runtime.engine.status()
        assert status.balance == Decimal("10000")
    times = int(fault.get("times", 1))  # type: ignore[call-overload]
    assert len(live_bybit.requests_to(path)) - before == times + 1


async def test_an_order_with_a_server_error_is_looked_up_not_resent(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """10016 on an order proves nothing either way: it is looked up by orderLinkId, not sent
    again; not found, the signal fails and reconciliation confirms nothing was traded."""
    runtime, events = await start_live()
    await runtime.engine.start_trading()
    live_bybit.fail_next(CREATE, ret_code=10016, ret_msg="server error")
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s5")
    failed = await events.next(OrderFailed)
    assert isinstance(failed, OrderFailed)
    report = await events.next(Reconciled)
    assert isinstance(report, Reconciled)
    assert "is not on Bybit; nothing was traded" in report.findings[0]
    assert len(live_bybit.requests_to(CREATE)) == 1
    stored = await runtime.repo.get_order(entry_link_id("s5"))
    assert stored is not None
    assert stored.status is OrderStatus.FAILED


async def test_an_accepted_order_whose_lookup_failed_is_recovered_and_holds_its_symbol(
    workdir: Path, live_bybit: FakeBybit, clock: ManualClock
) -> None:
    """No answer to the order, and the lookup fails too: the outcome is unknown. The symbol
    stays taken (a second signal for it is not traded) until reconciliation finds the fill."""
    engine, _, repo, events = await live_engine(workdir, live_bybit, clock, timeout=1)
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await engine.start()
    try:
        await engine.start_trading()
        live_bybit.accept_then_timeout(CREATE, delay=2.5)
        live_bybit.fail_next("/v5/order/realtime", http_status=404, ret_msg="fake: lost")
        signal = Signal("lost-1", clock.now(), "SOLUSDT", "BUY", Decimal("0.8"), ttl_minutes=15)
        await engine.handle_record(signal)
        failed = await events.next(OrderFailed)
        assert isinstance(failed, OrderFailed)
        await engine.handle_record(
            Signal("again-1", clock.now(), "SOLUSDT", "BUY", Decimal("0.8"), ttl_minutes=15)
        )
        again = await repo.get_signal("again-1")
        assert again is not None
        assert again.outcome == "filtered:already_open"
        opened = await events.next(PositionOpened)
        assert isinstance(opened, PositionOpened)
        assert opened.position.signal_id == "lost-1"
        report = await events.next(Reconciled)
        assert isinstance(report, Reconciled)
        assert "its entry was filled" in report.findings[0]
        assert len(live_bybit.requests_to(CREATE)) == 1
    finally:
        await engine.stop()
        await repo.close()
