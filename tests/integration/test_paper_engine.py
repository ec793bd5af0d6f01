"""The paper engine end to end: a signal appended to the log is opened on the fake Bybit's
prices and closed on TP, SL and TTL with the right net PnL; a restart never re-opens it.

Real parts: pybit (REST and public WebSocket) against the loopback fake, SQLite, the file
follower, and the same ``build_runtime`` wiring that ``python -m bot`` uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.bybit import FakeBybit
from tests.integration.support import (
    RATE,
    Events,
    append_signal,
    fmt,
    settings_for,
)
from trader.clock import ManualClock
from trader.events import (
    DailyLossLimitReached,
    PositionClosed,
    PositionOpened,
    SignalSkipped,
)
from trader.models import CloseReason, Side, Signal
from trader.ports import OrderStatus
from trader.replay import PricePath, replay
from trader.runtime import Runtime, build_runtime
from trader.signal_row import signal_identity

RuntimeFactory = Callable[[], Awaitable[tuple[Runtime, Events]]]


@pytest.fixture
async def runtimes(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock
) -> AsyncIterator[RuntimeFactory]:
    """Starts runtimes on one data directory; every one still running is stopped at the end."""
    running: list[Runtime] = []

    async def start() -> tuple[Runtime, Events]:
        runtime = await build_runtime(settings_for(workdir, fake_bybit), clock=clock)
        events = Events()
        runtime.engine.bus.subscribe(events)
        await runtime.start()
        running.append(runtime)
        return runtime, events

    yield start
    for runtime in running:
        if runtime.engine._started:
            await runtime.stop()


async def test_long_opens_at_the_ask_and_closes_on_take_profit_net_of_fees(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    runtime, events = await runtimes()
    await runtime.engine.start_trading()

    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY")
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    position = opened.position
    assert position.side is Side.BUY
    assert position.entry_price == Decimal("190.01")  # a market buy fills at the ask
    assert position.qty == Decimal("26.3")  # 100 × 50 / 190.01 = 26.31… down to the 0.1 step
    assert position.stop_loss == Decimal("188.49")  # 190.01 × (1 − 0.8%), on the 0.01 tick
    assert position.take_profit == Decimal("192.86")  # 190.01 × (1 + 1.5%)
    assert position.entry_fee == Decimal("26.3") * Decimal("190.01") * RATE

    await fake_bybit.set_ticker("SOLUSDT", last="192.90", bid="192.88", ask="192.92")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    trade = closed.trade
    assert trade.reason is CloseReason.TAKE_PROFIT
    assert trade.exit_price == Decimal("192.88")  # the closing sell fills at the bid
    gross = (Decimal("192.88") - Decimal("190.01")) * Decimal("26.3")
    fees = Decimal("26.3") * (Decimal("190.01") + Decimal("192.88")) * RATE
    assert trade.net_pnl == gross - fees.quantize(Decimal("0.00000001"))
    assert trade.net_pnl > 0

    status = await runtime.engine.status()
    assert status.positions == []
    assert status.today_pnl == trade.net_pnl
    assert status.balance == Decimal(1000) + trade.net_pnl
    csv_rows = (workdir / "data" / "trades_log.csv").read_text().splitlines()
    assert len(csv_rows) == 2
    assert "SOLUSDT" in csv_rows[1]


async def test_short_closes_on_stop_loss_with_the_loss_and_both_fees(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    await fake_bybit.set_ticker("BTCUSDT", last="110000.0", bid="109999.9", ask="110000.1")
    runtime, events = await runtimes()
    await runtime.engine.start_trading()

    append_signal(workdir / "signals_log.csv", clock.now(), "BTCUSDT", "SELL")
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    position = opened.position
    assert (position.side, position.entry_price, position.qty) == (
        Side.SELL,
        Decimal("109999.9"),
        Decimal("0.045"),
    )
    assert position.stop_loss == Decimal("110879.9")  # +0.8%, on the 0.1 tick

    await fake_bybit.set_ticker("BTCUSDT", last="110900.0", bid="110899.9", ask="110900.1")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    trade = closed.trade
    assert trade.reason is CloseReason.STOP_LOSS
    assert trade.exit_price == Decimal("110900.1")  # the closing buy fills at the ask
    gross = (Decimal("109999.9") - Decimal("110900.1")) * Decimal("0.045")
    assert trade.gross_pnl == gross
    assert trade.net_pnl == gross - trade.entry_fee - trade.exit_fee
    assert trade.net_pnl < gross < 0


async def test_position_closes_at_market_when_its_ttl_passes(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    await fake_bybit.set_ticker("XRPUSDT", last="2.5000", bid="2.4999", ask="2.5001")
    runtime, events = await runtimes()
    await runtime.engine.start_trading()

    append_signal(workdir / "signals_log.csv", clock.now(), "XRPUSDT", "BUY", ttl=15)
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    assert opened.position.expires_at == clock.now() + timedelta(minutes=15)

    clock.advance(timedelta(minutes=14, seconds=59))
    await fake_bybit.set_ticker("XRPUSDT", last="2.5010", bid="2.5009", ask="2.5011")
    assert runtime.engine.open_positions()  # not yet

    clock.advance(timedelta(seconds=1))
    await fake_bybit.set_ticker("XRPUSDT", last="2.5020", bid="2.5019", ask="2.5021")
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.reason is CloseReason.TTL
    assert closed.trade.exit_price == Decimal("2.5019")
    assert closed.trade.closed_at == clock.now()


async def test_restart_never_reopens_a_signal_and_adopts_the_open_position(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    first, events = await runtimes()
    await first.engine.start_trading()
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="sig-1")
    await events.next(PositionOpened)
    await first.stop()

    clock.advance(timedelta(seconds=5))  # still fresh: a careless restart would trade it again
    second, events2 = await runtimes()
    assert second.engine.trading_enabled  # remembered
    assert [p.symbol for p in second.engine.open_positions()] == ["SOLUSDT"]
    # One more signal proves the follower is live and past the old row.
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "SELL", signal_id="sig-2")
    skipped = await events2.next(SignalSkipped)
    assert isinstance(skipped, SignalSkipped)
    assert (skipped.signal_id, skipped.outcome) == ("sig-2", "filtered:already_open")
    assert not [e for e in events2.seen if isinstance(e, PositionOpened)]
    orders = await second.repo.orders_with_status(*OrderStatus)
    assert len(orders) == 1

    # The adopted position's TP still holds after the restart.
    await fake_bybit.set_ticker("SOLUSDT", last="193.00", bid="192.99", ask="193.01")
    closed = await events2.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    assert closed.trade.signal_id == "sig-1"
    assert closed.trade.reason is CloseReason.TAKE_PROFIT


async def test_rows_already_in_the_log_at_start_are_recorded_but_stale_ones_not_traded(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    log_path = workdir / "signals_log.csv"
    append_signal(log_path, clock.now() - timedelta(minutes=10), "SOLUSDT", "BUY", signal_id="old")
    append_signal(log_path, clock.now(), "DOGEUSDT", "BUY", confidence="0.2", signal_id="weak")
    with log_path.open("a") as handle:
        handle.write("garbage,row\n")
    runtime, events = await runtimes()
    await runtime.engine.start_trading()

    def skipped() -> dict[str, str]:
        return {e.signal_id: e.outcome for e in events.seen if isinstance(e, SignalSkipped)}

    async with asyncio.timeout(5):
        await runtime.feed.backlog_recorded.wait()
    # Rows decided on sight (stale, invalid) are recorded in bulk, with no event each; the
    # fresh one is decided like an appended row.
    await events.wait(lambda: "weak" in skipped())
    assert skipped() == {"weak": "filtered:low_confidence"}
    garbage = signal_identity({"line": "garbage,row"})
    outcomes = {"old": "filtered:stale", "weak": "filtered:low_confidence"}
    for signal_id, outcome in {**outcomes, garbage: "invalid:bad_row"}.items():
        stored = await runtime.repo.get_signal(signal_id)
        assert stored is not None
        assert stored.outcome == outcome
    assert not runtime.engine.open_positions()


async def test_a_burst_of_signals_never_passes_the_open_position_limit(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    runtime, events = await runtimes()
    await runtime.engine.start_trading()
    await runtime.engine.set_limit("max_positions", "3")
    symbols = ["SOLUSDT", "BTCUSDT", "ETHUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "LINKUSDT"]
    # One write: the whole burst arrives in one batch, before any entry has filled.
    with (workdir / "signals_log.csv").open("a") as handle:
        for symbol in symbols:
            handle.write(f"{fmt(clock.now())},{symbol},,BUY,0.9,,,,,,,,,,,,15,,,burst-{symbol}\n")

    def decided() -> int:
        return sum(isinstance(e, PositionOpened | SignalSkipped) for e in events.seen)

    await events.wait(lambda: decided() == len(symbols))
    await runtime.engine.wait_idle()
    opened = [e for e in events.seen if isinstance(e, PositionOpened)]
    rejected = [e for e in events.seen if isinstance(e, SignalSkipped)]
    assert len(opened) == 3
    assert {e.outcome for e in rejected} == {"rejected:max_open_positions"}
    assert len(runtime.engine.open_positions()) == 3


async def test_daily_loss_limit_stops_entries_closes_what_is_open_and_says_so(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    runtime, events = await runtimes()
    await runtime.engine.start_trading()
    await runtime.engine.set_limit("daily_loss", "30")
    log_path = workdir / "signals_log.csv"
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="189.99", ask="190.01")
    await fake_bybit.set_ticker("ETHUSDT", last="4000.00", bid="3999.99", ask="4000.01")
    append_signal(log_path, clock.now(), "SOLUSDT", "BUY", signal_id="a")
    append_signal(log_path, clock.now(), "ETHUSDT", "BUY", signal_id="b")
    await events.wait(lambda: len(runtime.engine.open_positions()) == 2)

    # SOL falls through its stop: a loss of ~40 USDT plus fees, past the 30 USDT limit.
    await fake_bybit.set_ticker("SOLUSDT", last="188.00", bid="187.99", ask="188.01")
    limit = await events.next(DailyLossLimitReached)
    assert isinstance(limit, DailyLossLimitReached)
    assert limit.limit == Decimal(30)
    assert limit.loss > Decimal(30)
    await events.wait(lambda: not runtime.engine.open_positions())
    reasons = {e.trade.symbol: e.trade.reason for e in events.seen if isinstance(e, PositionClosed)}
    assert reasons == {"SOLUSDT": CloseReason.STOP_LOSS, "ETHUSDT": CloseReason.DAILY_LOSS}

    before = len(events.seen)
    append_signal(log_path, clock.now(), "XRPUSDT", "BUY", signal_id="c")
    skipped = await events.next(SignalSkipped, after=before)
    assert isinstance(skipped, SignalSkipped)
    assert skipped.outcome == "rejected:daily_loss_limit"
    status = await runtime.engine.status()
    assert status.daily_loss_reached

    # A new UTC day lifts the stop.
    clock.set(clock.now().replace(hour=0, minute=0, second=1) + timedelta(days=1))
    before = len(events.seen)
    append_signal(log_path, clock.now(), "XRPUSDT", "BUY", signal_id="d")
    assert isinstance(await events.next(PositionOpened, after=before), PositionOpened)


async def test_manual_close_and_close_all(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    runtime, events = await runtimes()
    await runtime.engine.start_trading()
    log_path = workdir / "signals_log.csv"
    for symbol in ("SOLUSDT", "BTCUSDT", "ETHUSDT"):
        append_signal(log_path, clock.now(), symbol, "SELL", signal_id=f"m-{symbol}")
    await events.wait(lambda: len(runtime.engine.open_positions()) == 3)

    trade = await runtime.engine.close("solusdt")
    assert trade is not None
    assert trade.reason is CloseReason.MANUAL
    assert await runtime.engine.close("SOLUSDT") is None  # nothing left to close
    trades = await runtime.engine.close_all()
    assert sorted(t.symbol for t in trades) == ["BTCUSDT", "ETHUSDT"]
    assert not runtime.engine.open_positions()
    recent = await runtime.engine.recent_trades(10)
    assert len(recent) == 3
    stats = await runtime.engine.stats()
    assert stats.trades == 3
    assert stats.net_pnl == sum((t.net_pnl for t in recent), Decimal(0))


async def test_trading_is_off_on_the_very_first_start(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    runtime, events = await runtimes()
    assert not runtime.engine.trading_enabled
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="off")
    skipped = await events.next(SignalSkipped)
    assert isinstance(skipped, SignalSkipped)
    assert skipped.outcome == "rejected:trading_disabled"


async def test_replay_and_the_paper_engine_make_the_same_trade_from_the_same_prices(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    """One implementation: with no spread, the engine's trade equals replay's to the satoshi."""
    await fake_bybit.set_ticker("SOLUSDT", last="190.00", bid="190.00", ask="190.00")
    runtime, events = await runtimes()
    await runtime.engine.start_trading()
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="same")
    opened = await events.next(PositionOpened)
    assert isinstance(opened, PositionOpened)
    take = opened.position.take_profit
    await fake_bybit.set_ticker("SOLUSDT", last=str(take), bid=str(take), ask=str(take))
    closed = await events.next(PositionClosed)
    assert isinstance(closed, PositionClosed)
    live = closed.trade

    instruments = {"SOLUSDT": await runtime.engine.exchange.instrument("SOLUSDT")}
    signal = Signal(
        id="same",
        timestamp=clock.now(),
        symbol="SOLUSDT",
        verdict="BUY",
        confidence=Decimal("0.8"),
        entry_price=Decimal("190.00"),
        ttl_minutes=15,
    )
    path = PricePath(high=take, low=Decimal("189.50"), final=Decimal(190))
    result = replay(
        [signal], {(signal.timestamp, "SOLUSDT", "BUY"): path}, runtime.strategy, instruments
    )
    (replayed,) = result.trades
    for name in (
        "qty",
        "entry_price",
        "exit_price",
        "entry_fee",
        "exit_fee",
        "gross_pnl",
        "net_pnl",
        "reason",
    ):
        assert getattr(replayed, name) == getattr(live, name), name


async def test_limits_set_from_chat_survive_a_restart_until_reset(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    first, _ = await runtimes()
    await first.engine.set_limit("max_positions", "4")
    with pytest.raises(ValueError, match="unknown limit"):
        await first.engine.set_limit("bogus", "1")
    await first.stop()
    second, _ = await runtimes()
    assert second.engine.limits.max_open_positions == 4
    with pytest.raises(ValueError, match="unknown limit"):
        await second.engine.reset_limit("bogus")
    _, limits = await second.engine.reset_limit("max_positions")
    assert limits.max_open_positions == 15  # back to the strategy file's value


async def test_two_limit_changes_at_once_both_hold(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock, runtimes: RuntimeFactory
) -> None:
    """Two /limits commands handled together (aiogram runs updates as concurrent tasks):
    neither may lay its change over limits read before the other's write."""
    runtime, _ = await runtimes()
    await asyncio.gather(
        runtime.engine.set_limit("daily_loss", "50"),
        runtime.engine.set_limit("max_positions", "3"),
    )
    assert runtime.engine.limits.max_daily_loss_usdt == Decimal(50)
    assert runtime.engine.limits.max_open_positions == 3
