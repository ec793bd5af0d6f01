"""Live-mode scenarios against the fake Bybit (real pybit, REST and the private stream): the
exits (SL, TTL, /close, by hand), restarts with a position open or an order in flight,
a stream gap with a fill in it, and the error taxonomy (10001, 10006, 10002, 5xx).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pybit.unified_trading import HTTP

from storage.repositories import SqliteRepositories
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import (
    LIVE_KEY,
    LIVE_SECRET,
    AppFactory,
    Chat,
    Events,
    append_signal,
    settings_for,
)
from trader.clock import ManualClock
from trader.engine import Engine
from trader.events import OrderFailed, PositionClosed, PositionOpened, Reconciled
from trader.exchange.bybit import BybitExchange
from trader.exchange.market import BybitMarketData
from trader.models import CloseReason, Side, Signal
from trader.orders import entry_link_id, exit_link_id
from trader.ports import OrderRecord, OrderStatus
from trader.runtime import Runtime, build_runtime
from trader.settings import load_strategy

CREATE = "/v5/order/create"
EXECUTIONS = "/v5/execution/list"

StartLive = Callable[..., Awaitable[tuple[Runtime, Events]]]


@pytest.fixture
async def start_live(
    workdir: Path, live_bybit: FakeBybit, clock: ManualClock
) -> AsyncIterator[StartLive]:
    """Starts a live runtime on the test's data directory, its events collected from the
    very start (start-up reconciliation included); each is stopped at the end."""
    running: list[Runtime] = []

    async def start(**overrides: object) -> tuple[Runtime, Events]:
        settings = settings_for(
            workdir,
            live_bybit,
            trading_mode="live",
            bybit_api_key=LIVE_KEY,
            bybit_api_secret=LIVE_SECRET,
            **overrides,
        )
        runtime = await build_runtime(settings, clock=clock)
        events = Events()
        runtime.engine.bus.subscribe(events)
        running.append(runtime)
        await runtime.start()
        return runtime, events

    yield start
    for runtime in running:
        await runtime.stop()


async def open_sol(
    runtime: Runtime, events: Events, fake: FakeBybit, workdir: Path, clock: ManualClock
) -> PositionOpened:
    await fake.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await runtime.engine.start_trading()
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s1")
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    return opened


def reconciled(events: Events) -> list[str]:
    return [f for e in events.seen if isinstance(e, Reconciled) for f in e.findings]


# --- exits ---------------------------------------------------------------------------------------


async def test_stop_loss_close_comes_from_the_stream_with_bybits_pnl(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    await live_bybit.set_ticker("SOLUSDT", last="188.40", bid="188.38", ask="188.42")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    trade = closed.trade
    assert trade.reason is CloseReason.STOP_LOSS
    record = live_bybit.closed_pnl[-1]
    assert trade.net_pnl == record.closed_pnl
    assert trade.exit_price == record.avg_exit_price
    assert trade.net_pnl < 0
    # Entry and exit came from the stream's pushes: REST was never asked for executions.
    assert live_bybit.requests_to(EXECUTIONS) == []
    assert runtime.engine.open_positions() == []


async def test_ttl_close_sends_a_recorded_reduce_only_order(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    clock.advance(opened.position.expires_at - clock.now() + timedelta(seconds=1))
    await live_bybit.set_ticker("SOLUSDT", last="190.50", bid="190.49", ask="190.51")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.TTL
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    exits = [json.loads(r.body) for r in live_bybit.requests_to(CREATE)][1:]
    assert len(exits) == 1
    assert exits[0]["reduceOnly"] is True
    assert exits[0]["orderLinkId"] == exit_link_id("s1")
    stored = await runtime.repo.get_order(exit_link_id("s1"))
    assert stored is not None
    assert (stored.status, stored.reduce_only) == (OrderStatus.FILLED, True)
    assert live_bybit.position("SOLUSDT") is None


async def test_close_from_chat_closes_on_bybit(
    apps: AppFactory,
    live_bybit: FakeBybit,
    fake_telegram: FakeTelegram,
    workdir: Path,
    clock: ManualClock,
) -> None:
    chat = Chat(fake_telegram)
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await apps(trading_mode="live", bybit_api_key=LIVE_KEY, bybit_api_secret=LIVE_SECRET)
    await chat.ask("/start_trading", "Trading ON")
    mark = chat.mark()
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s1")
    await chat.expect("Opened SOLUSDT", after=mark)
    await live_bybit.set_ticker("SOLUSDT", last="191.00", bid="190.99", ask="191.01")
    reply = await chat.ask("/close SOLUSDT", "Closed SOLUSDT")
    assert live_bybit.position("SOLUSDT") is None
    record = live_bybit.closed_pnl[-1]
    assert f"{record.closed_pnl:+,.2f} USDT net" in reply.text  # Bybit's own closedPnl
    close = json.loads(live_bybit.requests_to(CREATE)[-1].body)
    assert (close["reduceOnly"], close["orderLinkId"]) == (True, exit_link_id("s1"))
    await chat.expect("manual", after=mark)  # the close notification says why


async def test_a_position_closed_by_hand_on_bybit_is_detected_and_reported(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    await live_bybit.close_by_hand("SOLUSDT")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.EXTERNAL
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    assert runtime.engine.open_positions() == []


# --- restarts ------------------------------------------------------------------------------------


async def test_restart_with_a_position_open_adopts_it_without_a_new_order(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    opened = await open_sol(runtime, events, live_bybit, workdir, clock)
    await runtime.stop()
    before = live_bybit.position("SOLUSDT")
    assert before is not None
    protection = (before.stop_loss, before.take_profit)

    runtime, events = await start_live()
    assert [p.signal_id for p in runtime.engine.open_positions()] == ["s1"]
    assert len(live_bybit.requests_to(CREATE)) == 1  # the entry, never again
    assert live_bybit.requests_to("/v5/position/trading-stop") == []
    after = live_bybit.position("SOLUSDT")
    assert after is not None
    assert (after.stop_loss, after.take_profit) == protection
    assert reconciled(events) == []  # the database and Bybit agree
    # Re-appending the same row does nothing either.
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s1")
    await live_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.TAKE_PROFIT
    assert closed.trade.entry_price == opened.position.entry_price
    assert len(live_bybit.requests_to(CREATE)) == 1


async def test_an_entry_filled_while_the_bot_was_down_is_recovered_by_its_link_id(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """The crash came after the order was sent and before its fill was stored: the order
    record says pending, Bybit has the position. Nothing is sent again."""
    runtime, events = await start_live()
    await runtime.engine.start_trading()
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await runtime.stop()
    # The "crash", as the database and Bybit are left by it: the engine recorded the order
    # as pending and sent it; Bybit filled it; the fill never reached the database.
    link = entry_link_id("crash-1")
    await _record_pending_entry(workdir, live_bybit, clock, "crash-1")
    await asyncio.to_thread(_place_directly, live_bybit, link)

    runtime, events = await start_live()
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    assert opened.position.signal_id == "crash-1"
    venue = live_bybit.position("SOLUSDT")
    assert venue is not None
    assert opened.position.stop_loss == venue.stop_loss
    assert opened.position.take_profit == venue.take_profit
    findings = reconciled(events)
    assert len(findings) == 1
    assert "its entry was filled while the bot was not watching" in findings[0]
    assert len(live_bybit.requests_to(CREATE)) == 0  # the bot itself sent nothing
    stored = await runtime.repo.get_order(link)
    assert stored is not None
    assert stored.status is OrderStatus.FILLED
    signal = await runtime.repo.get_signal("crash-1")
    assert signal is not None
    assert signal.outcome == "opened"


async def test_a_position_that_closed_while_the_bot_was_down_is_settled_with_bybits_pnl(
    start_live: StartLive, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = await start_live()
    await open_sol(runtime, events, live_bybit, workdir, clock)
    await runtime.stop()
    await live_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
    assert live_bybit.position("SOLUSDT") is None

    runtime, events = await start_live()
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.TAKE_PROFIT
    assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
    findings = reconciled(events)
    assert len(findings) == 1
    assert "closed on Bybit (TP)" in findings[0]
    assert runtime.engine.open_positions() == []


async def test_an_unknown_position_on_bybit_is_adopted_and_reported(
    start_live: StartLive, live_bybit: FakeBybit
) -> None:
    await live_bybit.open_position("BTCUSDT", "Sell", "0.01", "60000", leverage="5")
    runtime, events = await start_live()
    [position] = runtime.engine.open_positions()
    assert (position.symbol, position.qty, position.side.value) == (
        "BTCUSDT",
        Decimal("0.01"),
        "Sell",
    )
    findings = reconciled(events)
    assert len(findings) == 1
    assert "not opened by the bot: adopted" in findings[0]
    assert "NO stop-loss" in findings[0]
    # It is tracked like any other: closing it from the bot works.
    trade = await runtime.engine.close("BTCUSDT")
    assert trade is not None
    assert live_bybit.position("BTCUSDT") is None


# --- the stream ----------------------------------------------------------------------------------


async def test_a_fill_during_a_stream_gap_is_recovered_by_reconciliation(
    workdir: Path, live_bybit: FakeBybit, clock: ManualClock
) -> None:
    """No REST polling here (an hour apart): only the reconciliation after the reconnect
    can find the TP that hit while the stream was down."""
    engine, exchange, repo, events = await _engine(workdir, live_bybit, clock, poll_interval=3600)
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
    engine, _, repo, events = await _engine(workdir, live_bybit, clock, timeout=1)
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


# --- helpers -------------------------------------------------------------------------------------


async def _engine(
    workdir: Path, fake: FakeBybit, clock: ManualClock, **options: Any
) -> tuple[Engine, BybitExchange, SqliteRepositories, Events]:
    """An engine over the live adapter built by hand, for adapter options ``build_runtime``
    does not expose (a short HTTP timeout, no REST polling)."""
    repo = await SqliteRepositories.open(workdir / "engine.db")
    market = BybitMarketData(fake.url, fake.ws_public_url)
    exchange = BybitExchange(
        market,
        rest_url=fake.url,
        ws_private_url=fake.ws_private_url,
        api_key=LIVE_KEY,
        api_secret=LIVE_SECRET,
        clock=clock,
        **options,
    )
    engine = Engine(
        strategy=load_strategy(workdir / "strategy.json"),
        exchange=exchange,
        repo=repo,
        clock=clock,
    )
    events = Events()
    engine.bus.subscribe(events)
    return engine, exchange, repo, events


async def _record_pending_entry(
    workdir: Path, fake: FakeBybit, clock: ManualClock, signal_id: str
) -> None:
    """What the engine stores before it sends an entry: the signal and a pending order."""
    repo = await SqliteRepositories.open(workdir / "data" / "live.db")
    try:
        signal = Signal(signal_id, clock.now(), "SOLUSDT", "BUY", Decimal("0.8"), ttl_minutes=15)
        await repo.record_signal(signal, clock.now())
        await repo.add_order(
            OrderRecord(
                link_id=entry_link_id(signal_id),
                signal_id=signal_id,
                symbol="SOLUSDT",
                side=Side.BUY,
                qty=Decimal("26.3"),
                reduce_only=False,
                status=OrderStatus.PENDING,
                created_at=clock.now(),
            )
        )
    finally:
        await repo.close()


def _place_directly(fake: FakeBybit, link: str) -> None:
    """The order as the engine sends it, placed by a separate pybit client."""
    http = HTTP(testnet=False, api_key=LIVE_KEY, api_secret=LIVE_SECRET)
    http.endpoint = fake.url
    http.place_order(
        category="linear",
        symbol="SOLUSDT",
        side="Buy",
        orderType="Market",
        qty="26.3",
        positionIdx=0,
        orderLinkId=link,
        stopLoss="188.49",
        takeProfit="192.86",
        tpslMode="Full",
    )
    fake.requests.clear()  # the bot's requests are what the test counts
