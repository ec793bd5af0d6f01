"""Helpers shared by the live-mode scenario tests (real pybit against the fake Bybit): live
settings with the fake's trade-only key, a live runtime started on the test's data directory,
a SOLUSDT position opened through it, the findings of its reconciliations, and the live
adapter (and an engine over it) built by hand for options ``build_runtime`` does not expose,
with an entry order to give it.

Test modules import the ``start_live`` fixture by name (``from tests.integration.live_support
import start_live``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pybit.unified_trading import HTTP

from storage.repositories import SqliteRepositories
from tests.fakes.bybit import FakeBybit
from tests.integration.support import LIVE_KEY, LIVE_SECRET, Events, append_signal, settings_for
from trader.clock import Clock, ManualClock, SystemClock
from trader.engine import Engine
from trader.events import PositionOpened, Reconciled
from trader.exchange.bybit import BybitExchange
from trader.exchange.market import BybitMarketData
from trader.exchange.venue_gate import VenueGate
from trader.models import EntryOrder, Side, Signal
from trader.orders import entry_link_id
from trader.ports import OrderRecord, OrderStatus
from trader.runtime import Runtime, build_runtime
from trader.settings import Settings
from trader.strategy import load_strategy

CREATE = "/v5/order/create"

StartLive = Callable[..., Awaitable[tuple[Runtime, Events]]]


def live_settings(workdir: Path, fake: FakeBybit, **overrides: object) -> Settings:
    """``settings_for`` in live mode, with the trade-only key of the fake (``live_bybit``)."""
    return settings_for(
        workdir,
        fake,
        trading_mode="live",
        bybit_api_key=LIVE_KEY,
        bybit_api_secret=LIVE_SECRET,
        **overrides,
    )


@pytest.fixture
async def start_live(
    workdir: Path, live_bybit: FakeBybit, clock: ManualClock
) -> AsyncIterator[StartLive]:
    """Starts a live runtime on the test's data directory, its events collected from the
    very start (start-up reconciliation included); each is stopped at the end.
    ``venue_check_seconds`` shortens the periodic reconciliation; other keywords are settings."""
    running: list[Runtime] = []

    async def start(
        venue_check_seconds: float | None = None, **overrides: object
    ) -> tuple[Runtime, Events]:
        settings = live_settings(workdir, live_bybit, **overrides)
        runtime = await build_runtime(
            settings, clock=clock, venue_check_seconds=venue_check_seconds
        )
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


def sol_entry(signal_id: str) -> EntryOrder:
    """A market BUY of 1 SOLUSDT at 10x with its SL and TP, as the engine asks the venue."""
    return EntryOrder(
        link_id=entry_link_id(signal_id),
        signal_id=signal_id,
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("1"),
        leverage=10,
        stop_loss=Decimal("140"),
        take_profit=Decimal("160"),
    )


def reconciled(events: Events) -> list[str]:
    """Every finding of the reconciliations so far, in order."""
    return [f for e in events.seen if isinstance(e, Reconciled) for f in e.findings]


def live_exchange(
    fake: FakeBybit, *, clock: Clock | None = None, gate: VenueGate | None = None, **options: Any
) -> BybitExchange:
    """The live adapter on the fake with the trade-only key, not started; ``gate`` is shared
    by its market data and its trading client, ``options`` go to ``BybitExchange``."""
    return BybitExchange(
        BybitMarketData(fake.url, fake.ws_public_url, gate=gate),
        rest_url=fake.url,
        api_key=LIVE_KEY,
        api_secret=LIVE_SECRET,
        clock=clock or SystemClock(),
        gate=gate,
        **{"ws_private_url": fake.ws_private_url, **options},
    )


async def live_engine(
    workdir: Path, fake: FakeBybit, clock: ManualClock, **options: Any
) -> tuple[Engine, BybitExchange, SqliteRepositories, Events]:
    """An engine over the live adapter built by hand (``live_exchange(**options)``), on its
    own database in ``workdir``, its events collected; not started."""
    repo = await SqliteRepositories.open(workdir / "engine.db")
    exchange = live_exchange(fake, clock=clock, **options)
    engine = Engine(
        strategy=load_strategy(workdir / "strategy.json"),
        exchange=exchange,
        repo=repo,
        clock=clock,
    )
    events = Events()
    engine.bus.subscribe(events)
    return engine, exchange, repo, events


async def record_pending_entry(
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


def direct_client(fake: FakeBybit) -> HTTP:
    """A separate pybit client on the fake with the trade key: what the bot sent before a
    crash, or a hand on Bybit, done beside the bot."""
    http = HTTP(testnet=False, api_key=LIVE_KEY, api_secret=LIVE_SECRET)
    http.endpoint = fake.url
    return http


def place_directly(fake: FakeBybit, link: str, take_profit: str | None = "192.86") -> None:
    """The order as the engine sends it, placed by a separate pybit client (``take_profit``
    None: as with several take-profits, set after the fill instead)."""
    direct_client(fake).place_order(
        category="linear",
        symbol="SOLUSDT",
        side="Buy",
        orderType="Market",
        qty="26.3",
        positionIdx=0,
        orderLinkId=link,
        stopLoss="188.49",
        tpslMode="Full",
        **({} if take_profit is None else {"takeProfit": take_profit}),
    )
    fake.requests.clear()  # the bot's requests are what the test counts
