"""Live mode end to end against the fake Bybit's private side, with the real pybit client:
the key is checked, orders carry SL/TP and an orderLinkId, the exchange's own fills and fees
are what gets recorded, and errors reach the engine as the exchange said them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.live_support import StartLive, live_exchange, sol_entry, start_live
from tests.integration.support import (
    CHAT,
    AppFactory,
    Events,
    append_signal,
    settings_for,
)
from trader.clock import ManualClock
from trader.errors import ConfigError
from trader.events import OrderFailed, PositionClosed, PositionOpened
from trader.models import CloseReason
from trader.orders import entry_link_id
from trader.runtime import Runtime, build_runtime

__all__ = ["start_live"]  # fixtures


@pytest.fixture
async def live(start_live: StartLive) -> tuple[Runtime, Events]:
    return await start_live()


async def test_open_then_take_profit_records_the_exchanges_fill_fees_and_pnl(
    live: tuple[Runtime, Events], live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = live
    await live_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await runtime.engine.start_trading()
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="s1")
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    position = opened.position
    order = live_bybit.order(entry_link_id("s1"))
    assert order is not None  # placed under the signal's orderLinkId
    placed = json.loads(live_bybit.requests_to("/v5/order/create")[0].body)
    assert (placed["tpslMode"], placed["positionIdx"]) == ("Full", 0)
    assert (placed["stopLoss"], placed["takeProfit"]) == ("188.49", "192.86")
    assert position.entry_price == Decimal("190.01")
    assert position.qty == Decimal("26.3")
    exchange_position = live_bybit.position("SOLUSDT")
    assert exchange_position is not None
    assert (exchange_position.stop_loss, exchange_position.take_profit) == (
        Decimal("188.49"),
        Decimal("192.86"),
    )
    entry_fee = live_bybit.executions[0].exec_fee
    assert position.entry_fee == entry_fee

    await live_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    trade = closed.trade
    assert trade.reason is CloseReason.TAKE_PROFIT
    record = live_bybit.closed_pnl[-1]
    assert trade.exit_price == record.avg_exit_price
    assert trade.net_pnl == record.closed_pnl  # Bybit's closedPnl: net of both fees
    assert runtime.engine.open_positions() == []


async def test_insufficient_balance_is_reported_with_the_exchanges_reason(
    live: tuple[Runtime, Events], live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    runtime, events = live
    live_bybit.set_wallet("5")
    await runtime.engine.start_trading()
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="poor")
    failed = await events.next(OrderFailed)
    assert isinstance(failed, OrderFailed)
    assert "110007" in failed.reason
    stored = await runtime.repo.get_signal("poor")
    assert stored is not None
    assert stored.outcome is not None
    assert stored.outcome.startswith("failed:Bybit refused the order")
    assert runtime.engine.open_positions() == []


@pytest.mark.parametrize(
    ("rights", "reason"),
    [
        ({"withdraw": True}, "can withdraw"),
        ({"transfer": True}, "can transfer"),
        ({"read_only": True}, "read-only"),
        ({"contract_trade": False}, "cannot trade contracts"),
    ],
)
async def test_a_key_with_the_wrong_rights_is_refused_before_anything_trades(
    workdir: Path,
    fake_bybit: FakeBybit,
    clock: ManualClock,
    rights: dict[str, bool],
    reason: str,
) -> None:
    fake_bybit.add_api_key("bad-key-789", "bad-secret-000", **rights)
    settings = settings_for(
        workdir,
        fake_bybit,
        trading_mode="live",
        bybit_api_key="bad-key-789",
        bybit_api_secret="bad-secret-000",
    )
    runtime = await build_runtime(settings, clock=clock)
    try:
        with pytest.raises(ConfigError, match=reason) as caught:
            await runtime.start()
        assert "bad-secret" not in str(caught.value)
        assert fake_bybit.requests_to("/v5/order/create") == []
    finally:
        await runtime.stop()


async def test_an_order_whose_answer_timed_out_is_found_by_its_link_id_not_sent_again(
    live_bybit: FakeBybit,
) -> None:
    exchange = live_exchange(live_bybit, timeout=1)
    await exchange.start(lambda event: None)
    try:
        live_bybit.accept_then_timeout("/v5/order/create", delay=2.5)
        order = sol_entry("slow")
        fill = await exchange.open(order)
        assert fill.qty == Decimal("1")
        assert len(live_bybit.requests_to("/v5/order/create")) == 1  # never re-sent
        assert len([o for o in live_bybit.orders if o.order_link_id == order.link_id]) == 1
    finally:
        await exchange.stop()


async def test_a_refused_key_is_also_said_in_chat(
    apps: AppFactory, fake_bybit: FakeBybit, fake_telegram: FakeTelegram
) -> None:
    fake_bybit.add_api_key("withdraw-key-1", "withdraw-secret-1", withdraw=True)
    with pytest.raises(ConfigError, match="can withdraw"):
        await apps(
            trading_mode="live",
            bybit_api_key="withdraw-key-1",
            bybit_api_secret="withdraw-secret-1",
        )
    await fake_telegram.wait_for_message(CHAT, "Not trading: BYBIT_API_KEY can withdraw")
