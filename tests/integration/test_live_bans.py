"""Bans and retries as Bybit documents them, against the fake Bybit with the real pybit client:
pybit retries no code itself; -1 and 429 are retried with our back-off, an order answered -1
is looked up and never sent again; an HTTP 403 ban stops every REST call until it is over,
is told in chat once, and what the exchange did meanwhile (a stop-loss) is found after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError

from bot.app import App, build_app
from bot.notifier import Backoff
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.live_support import live_engine, live_exchange, live_settings, sol_entry
from tests.integration.support import (
    CHAT,
    append_signal,
)
from trader.clock import ManualClock
from trader.errors import Banned, OutcomeUnknown
from trader.events import (
    OrderFailed,
    PositionClosed,
    PositionOpened,
    VenueBanLifted,
    VenueBanned,
)
from trader.exchange.bybit import BybitExchange
from trader.exchange.bybit_wire import call_pybit, make_http
from trader.exchange.venue_gate import VenueGate
from trader.models import CloseReason, Signal

CREATE = "/v5/order/create"
SERVER_TIME = "/v5/market/time"
BAN_SECONDS = 1.0  # the product waits 600 s; long enough here for the test's own steps
BAN_NOTE = "No call to Bybit until"  # the chat's note of a ban


# --- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [-1, 10002, 10006, 10016, 429])
async def test_pybit_itself_retries_no_code(fake_bybit: FakeBybit, code: int) -> None:
    http = make_http(fake_bybit.url, gate=VenueGate())
    fake_bybit.fail_next(SERVER_TIME, ret_code=code, ret_msg="fake: refused")
    try:
        with pytest.raises(InvalidRequestError):
            await asyncio.to_thread(http.get_server_time)
    finally:
        await asyncio.to_thread(http.client.close)
    assert len(fake_bybit.requests_to(SERVER_TIME)) == 1


@pytest.mark.parametrize(
    "refusal",
    [{"ret_code": -1}, {"ret_code": 429}, {"http_status": 429}],
    ids=["retCode -1", "retCode 429", "HTTP 429"],
)
async def test_minus_one_and_429_are_retried_with_our_back_off(
    fake_bybit: FakeBybit, refusal: dict[str, Any]
) -> None:
    http = make_http(fake_bybit.url, gate=VenueGate())
    fake_bybit.fail_next(SERVER_TIME, times=2, ret_msg="fake: busy", **refusal)
    try:
        # Our back-off waits 0.5 s, then 1 s; pybit's own loop would sleep 3 s per retry.
        async with asyncio.timeout(4):
            answer = await call_pybit("server time", http.get_server_time)
    finally:
        await asyncio.to_thread(http.client.close)
    assert answer["retCode"] == 0
    assert len(fake_bybit.requests_to(SERVER_TIME)) == 3


@pytest.fixture
async def exchange(live_bybit: FakeBybit) -> AsyncIterator[BybitExchange]:
    exchange = live_exchange(live_bybit, gate=VenueGate())
    await exchange.start(lambda event: None)
    yield exchange
    await exchange.stop()


async def test_an_order_answered_minus_one_is_looked_up_and_never_sent_again(
    live_bybit: FakeBybit, exchange: BybitExchange
) -> None:
    order = sol_entry("expired-1")
    live_bybit.fail_next(CREATE, ret_code=-1, ret_msg="request expired: o@0, now[] diff[]")
    with pytest.raises(OutcomeUnknown):
        await exchange.open(order)
    assert len(live_bybit.requests_to(CREATE)) == 1
    lookups = [
        r
        for path in ("/v5/order/realtime", "/v5/order/history")
        for r in live_bybit.requests_to(path)
        if r.query.get("orderLinkId") == order.link_id
    ]
    assert lookups != []


@pytest.mark.parametrize(
    "refusal", [{"ret_code": 429}, {"http_status": 429}], ids=["retCode 429", "HTTP 429"]
)
async def test_an_order_refused_with_429_is_sent_again(
    live_bybit: FakeBybit, exchange: BybitExchange, refusal: dict[str, Any]
) -> None:
    await live_bybit.set_ticker("SOLUSDT", last="150.00", bid="149.99", ask="150.01")
    order = sol_entry("busy-1")
    live_bybit.fail_next(CREATE, ret_msg="fake: high server load", **refusal)
    fill = await exchange.open(order)
    assert fill.qty == Decimal("1")
    assert len(live_bybit.requests_to(CREATE)) == 2
    assert len([o for o in live_bybit.orders if o.order_link_id == order.link_id]) == 1


# --- a ban ---------------------------------------------------------------------------------------


async def test_a_ban_stops_every_call_and_a_stop_loss_during_it_is_found_after(
    workdir: Path, live_bybit: FakeBybit, clock: ManualClock
) -> None:
    gate = VenueGate(ban_seconds=BAN_SECONDS)
    engine, exchange, repo, events = await live_engine(
        workdir,
        live_bybit,
        clock,
        ws_private_url=None,  # no private stream: exits are found by REST polling
        poll_interval=0.1,
        gate=gate,
    )
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await engine.start()
    try:
        await engine.start_trading()
        await engine.handle_record(_signal("ban-1", "SOLUSDT", clock))
        await events.next(PositionOpened)
        before = (await engine.status()).balance

        live_bybit.ban_ip()
        banned = await events.next(VenueBanned)  # the poller's next call met the 403
        assert isinstance(banned, VenueBanned)
        requests = len(live_bybit.requests)
        with pytest.raises(Banned):
            await exchange.balance()
        status = await engine.status()  # /status answers during the ban
        assert (status.balance, status.balance_stale) == (before, True)
        await engine.handle_record(_signal("ban-2", "BTCUSDT", clock))
        failed = await events.next(OrderFailed)
        assert isinstance(failed, OrderFailed)
        assert "not sent" in failed.reason
        await live_bybit.set_ticker("SOLUSDT", last="188.40", bid="188.38", ask="188.42")
        assert live_bybit.position("SOLUSDT") is None  # its stop-loss closed it on Bybit
        assert engine.open_positions() != []
        assert len(live_bybit.requests) == requests  # nothing reached Bybit meanwhile

        live_bybit.lift_ban()
        closed = await events.next(PositionClosed, timeout=5)
        assert isinstance(closed, PositionClosed)
        assert closed.trade.reason is CloseReason.STOP_LOSS
        assert closed.trade.net_pnl == live_bybit.closed_pnl[-1].closed_pnl
        await events.next(VenueBanLifted)
        assert len([e for e in events.seen if isinstance(e, VenueBanned)]) == 1
        assert len(live_bybit.requests_to(CREATE)) == 1  # the refused entry was not queued
    finally:
        await engine.stop()
        await repo.close()


@pytest.fixture
async def banned_app(
    workdir: Path, live_bybit: FakeBybit, fake_telegram: FakeTelegram, clock: ManualClock
) -> AsyncIterator[tuple[App, VenueGate]]:
    gate = VenueGate(ban_seconds=BAN_SECONDS)
    settings = live_settings(
        workdir,
        live_bybit,
        telegram_bot_token=fake_telegram.token,
        telegram_allowed_chat_ids=str(CHAT),
        telegram_api_url=fake_telegram.url,
        report_interval_minutes=0,
    )
    app = await build_app(
        settings,
        clock=clock,
        backoff=Backoff(first=0.05, cap=0.5),
        polling_timeout=1,
        venue_gate=gate,
    )
    await app.start()
    yield app, gate
    await app.stop()


async def test_the_chat_is_told_of_a_ban_once_and_of_its_end(
    banned_app: tuple[App, VenueGate],
    live_bybit: FakeBybit,
    fake_telegram: FakeTelegram,
    workdir: Path,
    clock: ManualClock,
) -> None:
    app, gate = banned_app
    log = workdir / "signals_log.csv"
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await app.engine.start_trading()
    live_bybit.ban_ip()
    append_signal(log, clock.now(), "SOLUSDT", "BUY", signal_id="b1")
    await fake_telegram.wait_for_message(CHAT, "Bybit banned this IP")
    await fake_telegram.wait_for_message(CHAT, "Order failed")
    append_signal(log, clock.now(), "XRPUSDT", "BUY", signal_id="b2")
    await fake_telegram.wait_until(lambda: len(_said(fake_telegram, "Order failed")) == 2)
    assert len(_said(fake_telegram, BAN_NOTE)) == 1

    live_bybit.lift_ban()
    await _wait_until_past(gate)
    append_signal(log, clock.now(), "SOLUSDT", "BUY", signal_id="b3")
    await fake_telegram.wait_for_message(CHAT, "Bybit answers again")
    await fake_telegram.wait_for_message(CHAT, "Opened")
    assert len(_said(fake_telegram, BAN_NOTE)) == 1
    assert len(live_bybit.requests_to(CREATE)) == 1  # b1 and b2 were refused, not queued


# --- helpers -------------------------------------------------------------------------------------


def _signal(signal_id: str, symbol: str, clock: ManualClock) -> Signal:
    return Signal(signal_id, clock.now(), symbol, "BUY", Decimal("0.8"), ttl_minutes=15)


def _said(fake: FakeTelegram, contains: str) -> list[str]:
    return [m.plain for m in fake.sent(CHAT) if contains in (m.plain or "")]


async def _wait_until_past(gate: VenueGate) -> None:
    """Until the ban's period is over (the gate lets the next request out)."""
    async with asyncio.timeout(BAN_SECONDS + 2):
        while True:
            try:
                gate.check()
            except Banned:
                await asyncio.sleep(0.05)
                continue
            return
