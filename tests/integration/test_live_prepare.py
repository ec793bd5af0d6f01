"""No round trip before the order (live, real pybit against the fake Bybit with a delay on
every REST answer): whitelisted symbols are prepared at start-up (instruments in one paged call,
leverage, position mode, ticker stream), so that a signal's first REST call is its order; other
symbols get the calls they need concurrently. Only USDT perpetuals are traded, and a symbol in
hedge mode is switched to one-way before its first entry, or its signal is rejected.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.bybit import FakeBybit, RecordedRequest
from tests.integration.live_support import StartLive, start_live
from tests.integration.support import STRATEGY, Events, append_signal, settings_for
from trader.clock import ManualClock
from trader.events import PositionOpened, SignalSkipped
from trader.models import Signal
from trader.runtime import Runtime, build_runtime

pytestmark = pytest.mark.timeout(20)
__all__ = ["start_live"]  # fixtures

CREATE = "/v5/order/create"
LEVERAGE = "/v5/position/set-leverage"
SWITCH = "/v5/position/switch-mode"
POSITIONS = "/v5/position/list"
TICKERS = "/v5/market/tickers"
INSTRUMENTS = "/v5/market/instruments-info"
DELAY = 0.1  # seconds on every REST answer: a network round trip
WHITELIST = ("SOLUSDT", "BTCUSDT")

Live = tuple[Runtime, Events]
LiveFactory = Callable[..., Awaitable[Live]]


@pytest.fixture
def live(workdir: Path, start_live: StartLive) -> LiveFactory:
    """Starts the live runtime with ``top_coins`` (and trading on); stops it afterwards."""

    async def start(top_coins: Sequence[str] = (), leverage: int = 50) -> Live:
        parameters = {**STRATEGY["parameters"], "leverage": leverage}  # type: ignore[dict-item]
        strategy = {**STRATEGY, "parameters": parameters, "top_coins": list(top_coins)}
        (workdir / "strategy.json").write_text(json.dumps(strategy))
        runtime, events = await start_live()
        await runtime.engine.start_trading()
        return runtime, events

    return start


def before_order(fake: FakeBybit, mark: int) -> list[RecordedRequest]:
    """The REST requests from ``mark`` on, up to the first order."""
    sent: list[RecordedRequest] = []
    for request in fake.requests[mark:]:
        if request.path == CREATE:
            return sent
        if request.is_rest:
            sent.append(request)
    raise AssertionError(f"no order after request {mark}: {[r.path for r in sent]}")


def params(request: RecordedRequest) -> dict[str, object]:
    return json.loads(request.body) if request.method == "POST" else dict(request.query)


def signal(clock: ManualClock, symbol: str, signal_id: str) -> Signal:
    return Signal(signal_id, clock.now(), symbol, "BUY", Decimal("0.9"), ttl_minutes=15)


async def opened(events: Events, symbol: str) -> PositionOpened:
    await events.wait(
        lambda: any(
            isinstance(e, PositionOpened) and e.position.symbol == symbol for e in events.seen
        )
    )
    return next(
        e for e in events.seen if isinstance(e, PositionOpened) and e.position.symbol == symbol
    )


async def skipped(events: Events, signal_id: str) -> str:
    def outcome() -> str | None:
        return next(
            (
                e.outcome
                for e in events.seen
                if isinstance(e, SignalSkipped) and e.signal_id == signal_id
            ),
            None,
        )

    await events.wait(lambda: outcome() is not None)
    found = outcome()
    assert found is not None
    return found


async def test_a_whitelisted_symbols_order_is_the_first_rest_call_after_its_signal(
    live: LiveFactory, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    _, events = await live(top_coins=WHITELIST)
    # Start-up: every instrument in one paged call, each whitelisted symbol's leverage set.
    loads = live_bybit.requests_to(INSTRUMENTS)
    assert [r.query.get("limit") for r in loads] == ["1000"]
    assert "symbol" not in loads[0].query
    leverage_set = {
        params(r)["symbol"]: params(r)["buyLeverage"] for r in live_bybit.requests_to(LEVERAGE)
    }
    assert leverage_set == {"SOLUSDT": "50", "BTCUSDT": "50"}
    live_bybit.set_rest_delay(DELAY)

    for number, symbol in enumerate(WHITELIST):
        mark = len(live_bybit.requests)
        append_signal(
            workdir / "signals_log.csv", clock.now(), symbol, "BUY", signal_id=f"w{number}"
        )
        position = (await opened(events, symbol)).position
        assert before_order(live_bybit, mark) == []
        assert position.leverage == 50
        exchange_position = live_bybit.position(symbol)
        assert exchange_position is not None
        assert exchange_position.leverage == Decimal(50)


async def test_a_new_symbols_calls_before_the_order_run_concurrently(
    live: LiveFactory, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    _, events = await live()  # no whitelist: any coin, none prepared
    live_bybit.set_rest_delay(DELAY)
    mark = len(live_bybit.requests)

    append_signal(workdir / "signals_log.csv", clock.now(), "ETHUSDT", "BUY", signal_id="new")
    await opened(events, "ETHUSDT")

    calls = before_order(live_bybit, mark)
    # The instrument came with the start-up load; ticker, leverage and position mode are
    # asked at once: one round trip before the order, not three.
    assert sorted(r.path for r in calls) == sorted([TICKERS, LEVERAGE, POSITIONS])
    assert max(r.at for r in calls) - min(r.at for r in calls) < DELAY
    order = live_bybit.requests_to(CREATE)[-1]
    assert order.at - min(r.at for r in calls) < 2 * DELAY


@pytest.mark.parametrize("symbol", ["BTCPERP", "BTCUSDT-26DEC26"])
async def test_a_signal_for_anything_but_a_usdt_perpetual_is_rejected(
    live: LiveFactory, live_bybit: FakeBybit, clock: ManualClock, symbol: str
) -> None:
    runtime, events = await live()

    await runtime.engine.handle_record(signal(clock, symbol, "not-usdt"))

    assert await skipped(events, "not-usdt") == "rejected:not_usdt_perpetual"
    await runtime.engine.wait_idle()
    assert live_bybit.requests_to(CREATE) == []
    assert not [r for r in live_bybit.requests if params(r).get("symbol") == symbol]


async def test_a_whitelisted_symbol_that_is_not_a_usdt_perpetual_is_warned_about(
    live: LiveFactory, live_bybit: FakeBybit, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await live(top_coins=["SOLUSDT", "BTCPERP"])

    assert "BTCPERP is not a USDT perpetual" in caplog.text
    assert [params(r)["symbol"] for r in live_bybit.requests_to(LEVERAGE)] == ["SOLUSDT"]


async def test_a_whitelisted_hedge_mode_symbol_is_switched_to_one_way_at_start_up(
    live: LiveFactory, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    live_bybit.set_symbol_position_mode("SOLUSDT", hedge=True)
    _, events = await live(top_coins=["SOLUSDT"])
    switches = [params(r) for r in live_bybit.requests_to(SWITCH) if "symbol" in params(r)]
    assert switches == [{"category": "linear", "symbol": "SOLUSDT", "mode": 0}]
    live_bybit.set_rest_delay(DELAY)

    mark = len(live_bybit.requests)
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="sol")
    await opened(events, "SOLUSDT")

    assert before_order(live_bybit, mark) == []  # switched at start-up already
    placed = json.loads(live_bybit.requests_to(CREATE)[-1].body)
    assert (placed["symbol"], placed["positionIdx"]) == ("SOLUSDT", 0)


async def test_a_hedge_mode_symbol_is_switched_to_one_way_before_its_first_order(
    live: LiveFactory, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    live_bybit.set_symbol_position_mode("ETHUSDT", hedge=True)
    _, events = await live()  # any coin: ETHUSDT is not prepared
    live_bybit.set_rest_delay(DELAY)

    mark = len(live_bybit.requests)
    append_signal(workdir / "signals_log.csv", clock.now(), "ETHUSDT", "BUY", signal_id="eth")
    await opened(events, "ETHUSDT")

    calls = [r.path for r in before_order(live_bybit, mark)]
    assert calls.index(POSITIONS) < calls.index(SWITCH)
    switched = params(live_bybit.requests_to(SWITCH)[-1])
    assert (switched["symbol"], switched["mode"]) == ("ETHUSDT", 0)
    placed = json.loads(live_bybit.requests_to(CREATE)[-1].body)
    assert (placed["symbol"], placed["positionIdx"]) == ("ETHUSDT", 0)


async def test_a_hedge_mode_symbol_bybit_will_not_switch_is_rejected_with_that_reason(
    live: LiveFactory, live_bybit: FakeBybit, clock: ManualClock
) -> None:
    runtime, events = await live()
    live_bybit.set_symbol_position_mode("ETHUSDT", hedge=True)
    live_bybit.fail_next(
        SWITCH,
        ret_code=110024,
        ret_msg="You have existing positions, so position mode cannot be switched",
    )

    await runtime.engine.handle_record(signal(clock, "ETHUSDT", "hedged"))

    assert await skipped(events, "hedged") == "rejected:hedge_mode"
    await runtime.engine.wait_idle()
    assert live_bybit.requests_to(CREATE) == []
    assert runtime.engine.open_positions() == []
    stored = await runtime.repo.get_signal("hedged")
    assert stored is not None
    assert stored.outcome == "rejected:hedge_mode"


async def test_changing_the_leverage_sets_it_on_bybit_for_the_whitelist_at_once(
    live: LiveFactory, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    # A position open on a whitelisted symbol keeps its leverage: changing it would change
    # that position's margin.
    await live_bybit.open_position("BTCUSDT", "Buy", "0.01", "65000", leverage="50")
    runtime, events = await live(top_coins=WHITELIST)
    mark = len(live_bybit.requests)

    await runtime.engine.set_limit("leverage", "20")

    changed = [params(r) for r in live_bybit.requests[mark:] if r.path == LEVERAGE]
    assert [(p["symbol"], p["buyLeverage"]) for p in changed] == [("SOLUSDT", "20")]
    live_bybit.set_rest_delay(DELAY)
    mark = len(live_bybit.requests)
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY", signal_id="lev")
    position = (await opened(events, "SOLUSDT")).position
    assert before_order(live_bybit, mark) == []
    assert position.leverage == 20
    exchange_position = live_bybit.position("SOLUSDT")
    assert exchange_position is not None
    assert exchange_position.leverage == Decimal(20)


async def test_paper_trading_streams_the_whitelist_from_start_up_too(
    workdir: Path, fake_bybit: FakeBybit, clock: ManualClock
) -> None:
    strategy = {**STRATEGY, "top_coins": list(WHITELIST)}
    (workdir / "strategy.json").write_text(json.dumps(strategy))
    runtime = await build_runtime(settings_for(workdir, fake_bybit), clock=clock)
    events = Events()
    runtime.engine.bus.subscribe(events)
    await runtime.start()
    try:
        await runtime.engine.start_trading()
        assert {f"tickers.{s}" for s in WHITELIST} <= fake_bybit.subscribed_topics()
        fake_bybit.set_rest_delay(DELAY)
        mark = len(fake_bybit.requests)

        append_signal(workdir / "signals_log.csv", clock.now(), "BTCUSDT", "BUY", signal_id="p1")
        await opened(events, "BTCUSDT")

        assert [r.path for r in fake_bybit.requests[mark:] if r.is_rest] == []
    finally:
        await runtime.stop()


async def test_the_leverage_is_capped_at_bybits_max_at_start_up_and_at_the_entry(
    live: LiveFactory, live_bybit: FakeBybit, workdir: Path, clock: ManualClock
) -> None:
    """Bybit refuses set-leverage above maxLeverage (110013): whitelisted symbols are set at
    their maximum at start-up, and trade at that."""
    live_bybit.set_max_leverage("SOLUSDT", "25")
    live_bybit.set_max_leverage("BTCUSDT", "20")
    _, events = await live(top_coins=["SOLUSDT", "BTCUSDT"], leverage=50)
    asked = [json.loads(r.body) for r in live_bybit.requests_to(LEVERAGE)]
    assert sorted((a["symbol"], a["buyLeverage"]) for a in asked) == [
        ("BTCUSDT", "20"),
        ("SOLUSDT", "25"),
    ]
    for symbol in ("SOLUSDT", "BTCUSDT"):
        mark = len(events.seen)
        append_signal(workdir / "signals_log.csv", clock.now(), symbol, "BUY", signal_id=symbol)
        opened = await events.next(PositionOpened, after=mark)
        assert isinstance(opened, PositionOpened)
        assert opened.position.leverage == (25 if symbol == "SOLUSDT" else 20)
        assert opened.leverage_capped_from == 50
    assert len(live_bybit.requests_to(LEVERAGE)) == 2  # none refused and asked again
