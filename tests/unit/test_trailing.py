"""The trailing stop's pure parts: its distance and activation price from percent of margin,
how it follows the price, which exit a price triggers, and writing paper's best prices behind.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot import render
from trader import trailing
from trader.events import EngineStarted, PositionOpened
from trader.models import CloseReason, Position, Side, TrailingStop
from trader.read_models import PositionView, Status
from trader.rules import Limits, exit_trigger
from trader.sizing import trailing_prices
from trader.strategy import Strategy

TICKS = [Decimal("0.1"), Decimal("0.01"), Decimal("0.0001"), Decimal("0.00001"), Decimal(1)]


@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    tick=st.sampled_from(TICKS),
    ticks=st.integers(min_value=2, max_value=10**8),
    offset=st.decimals(min_value=0, max_value=Decimal("0.999"), places=3),
    distance_pct=st.decimals(min_value=Decimal("0.01"), max_value=500, places=2),
    activation_pct=st.none() | st.decimals(min_value=0, max_value=500, places=2),
    leverage=st.integers(min_value=1, max_value=125),
)
def test_the_distance_and_activation_are_on_the_tick_and_the_activation_on_the_winning_side(
    side: Side,
    tick: Decimal,
    ticks: int,
    offset: Decimal,
    distance_pct: Decimal,
    activation_pct: Decimal | None,
    leverage: int,
) -> None:
    entry = (ticks + offset) * tick  # a fill's average price need not be on the tick
    distance, active = trailing_prices(
        side,
        entry,
        distance_pct=distance_pct,
        activation_pct=activation_pct,
        leverage=leverage,
        tick=tick,
    )
    assert distance >= tick
    assert distance % tick == 0
    exact = entry * distance_pct / 100 / leverage
    assert abs(distance - exact) <= tick / 2 or distance == tick
    if activation_pct is None:
        assert active is None
        return
    assert active is not None
    assert active % tick == 0
    assert active > 0
    gain = side.sign * (active - entry)  # how far on the winning side
    assert gain > 0 if activation_pct > 0 else gain >= 0
    ideal = entry * (1 + side.sign * activation_pct / 100 / leverage)
    if side.sign * (ideal - entry) > tick and ideal > tick:
        assert abs(active - ideal) <= tick / 2  # the move asked for, to the nearest tick


def test_percent_of_margin_becomes_a_price_move_of_pct_over_leverage() -> None:
    # 20% / 30% of margin at 50x: a 0.4% distance, activated 0.6% in profit.
    assert trailing_prices(
        Side.BUY,
        Decimal(65000),
        distance_pct=Decimal(20),
        activation_pct=Decimal(30),
        leverage=50,
        tick=Decimal("0.1"),
    ) == (Decimal("260.0"), Decimal("65390.0"))
    assert trailing_prices(
        Side.SELL,
        Decimal("190.01"),
        distance_pct=Decimal(20),
        activation_pct=Decimal(30),
        leverage=50,
        tick=Decimal("0.01"),
    ) == (Decimal("0.76"), Decimal("188.87"))


def test_a_tiny_distance_is_one_tick_and_a_tiny_activation_a_tick_past_the_entry() -> None:
    distance, active = trailing_prices(
        Side.BUY,
        Decimal("100.00"),
        distance_pct=Decimal("0.01"),
        activation_pct=Decimal("0.01"),
        leverage=100,
        tick=Decimal("0.01"),
    )
    assert (distance, active) == (Decimal("0.01"), Decimal("100.01"))


def test_the_plan_is_none_without_trailing_stop_pct() -> None:
    strategy = Strategy(leverage=50)
    plan = trailing.plan(strategy, Side.BUY, Decimal(100), leverage=50, tick=Decimal("0.01"))
    assert plan is None


def test_a_trailing_stop_follows_only_once_active_and_only_the_best_price() -> None:
    follow, active = trailing.follow, Decimal(110)
    assert follow(Side.BUY, Decimal(109), None, active) is None  # not reached
    assert follow(Side.BUY, Decimal(110), None, active) == Decimal(110)
    assert follow(Side.BUY, Decimal(108), Decimal(110), active) == Decimal(110)  # kept
    assert follow(Side.BUY, Decimal(112), Decimal(110), active) == Decimal(112)
    assert follow(Side.SELL, Decimal(91), None, Decimal(90)) is None
    assert follow(Side.SELL, Decimal(89), Decimal(90), Decimal(90)) == Decimal(89)
    assert follow(Side.SELL, Decimal(95), Decimal(89), Decimal(90)) == Decimal(89)
    assert follow(Side.BUY, Decimal(95), None, None) == Decimal(95)  # active at once
    assert trailing.level(Side.BUY, Decimal(112), Decimal(2)) == Decimal(110)
    assert trailing.level(Side.SELL, Decimal(89), Decimal(2)) == Decimal(91)


def test_the_stop_loss_wins_when_one_price_crosses_it_and_the_trailing_stop() -> None:
    stop, take = Decimal(90), Decimal(120)
    at = Decimal(105)  # where the trailing stop stands
    assert exit_trigger(Side.BUY, Decimal(89), stop, take, at) is CloseReason.STOP_LOSS
    assert exit_trigger(Side.BUY, Decimal(105), stop, take, at) is CloseReason.TRAILING_STOP
    assert exit_trigger(Side.BUY, Decimal(106), stop, take, at) is None
    assert exit_trigger(Side.BUY, Decimal(121), stop, take, None) is CloseReason.TAKE_PROFIT
    assert exit_trigger(Side.SELL, Decimal(121), Decimal(120), Decimal(90), Decimal(100)) is (
        CloseReason.STOP_LOSS
    )
    assert exit_trigger(Side.SELL, Decimal(100), Decimal(120), Decimal(90), Decimal(100)) is (
        CloseReason.TRAILING_STOP
    )


# --- paper's best prices, written behind ------------------------------------------------------


class Store:
    """A ``BestPriceStore`` in memory: what was written, in order; ``open_ids`` exist."""

    def __init__(self, open_ids: set[str]) -> None:
        self.open_ids = open_ids
        self.writes: list[tuple[str, Decimal]] = []
        self.wrote = asyncio.Event()

    async def trailing_bests(self) -> dict[str, Decimal]:
        return dict(self.writes)

    async def set_trailing_best(self, link_id: str, best: Decimal) -> bool:
        if link_id not in self.open_ids:
            return False
        self.writes.append((link_id, best))
        self.wrote.set()
        return True


async def test_best_prices_are_written_behind_the_latest_of_each_and_flushed_at_close() -> None:
    store = Store({"a"})
    bests = trailing.BestPrices(store, held=lambda _: True, every=60)
    bests.moved("a", Decimal(101))
    await asyncio.wait_for(store.wrote.wait(), 5)  # the first at once
    for price in (102, 103, 104):  # within the minute: they wait, the latest wins
        bests.moved("a", Decimal(price))
    assert store.writes == [("a", Decimal(101))]
    await bests.close()
    assert store.writes == [("a", Decimal(101)), ("a", Decimal(104))]
    assert await bests.load() == {"a": Decimal(104)}


async def test_a_best_price_waits_for_its_position_to_be_stored_while_it_is_held() -> None:
    store = Store(set())
    held = {"a", "b"}
    bests = trailing.BestPrices(store, held=held.__contains__, every=0.01)
    bests.moved("a", Decimal(101))  # set before its position is stored
    bests.moved("b", Decimal(50))
    held.discard("b")  # closed before it was stored: dropped
    store.open_ids.add("a")
    await asyncio.wait_for(store.wrote.wait(), 5)
    await bests.close()
    assert store.writes == [("a", Decimal(101))]


async def test_without_a_store_nothing_is_kept() -> None:
    bests = trailing.BestPrices(None, held=lambda _: True)
    bests.moved("a", Decimal(1))
    await bests.close()
    assert await bests.load() == {}


def test_a_trailing_stop_without_activation_is_none_in_its_plan() -> None:
    strategy = Strategy(leverage=10, trailing_stop_pct=Decimal(5))
    plan = trailing.plan(strategy, Side.SELL, Decimal(100), leverage=10, tick=Decimal("0.01"))
    assert plan == TrailingStop(Decimal("0.50"), None)


# --- how chat says it -------------------------------------------------------------------------

T0 = datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)


def held(trailing_stop: TrailingStop | None) -> Position:
    return Position(
        signal_id="s1",
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("26.3"),
        entry_price=Decimal("190.01"),
        leverage=50,
        margin=Decimal("99.94"),
        stop_loss=Decimal("188.49"),
        take_profit=Decimal("192.86"),
        entry_fee=Decimal("2.74"),
        opened_at=T0,
        expires_at=T0 + timedelta(minutes=15),
        trailing=trailing_stop,
    )


def test_the_open_note_status_and_start_message_show_the_trailing_stop() -> None:
    tick = Decimal("0.01")
    plan = TrailingStop(Decimal("0.760"), Decimal("191.150"))
    note = render.opened_text(PositionOpened(held(plan), T0, tick))
    assert "SL 188.49 · TP 192.86\ntrailing stop 0.76 · active from 191.15\n" in note
    at_once = render.opened_text(PositionOpened(held(TrailingStop(Decimal("0.5"))), T0, tick))
    assert "trailing stop 0.50 · active at once" in at_once
    assert "trailing" not in render.opened_text(PositionOpened(held(None), T0, tick))

    view = PositionView(held(plan), Decimal(191), Decimal("24.5"), tick)
    limits = Limits(15, Decimal(500), Decimal(100), Decimal("0.5"), 50)
    status = Status("paper", True, [view], Decimal(0), Decimal(1000), limits, False)
    text = render.status_text(status, ZoneInfo("UTC"))
    assert "uPnL +24.50 USDT\n  trailing stop 0.76 · active from 191.15" in text

    strategy = Strategy(
        leverage=50, trailing_stop_pct=Decimal(20), trailing_activation_pct=Decimal(30)
    )
    started = render.engine_started_text(EngineStarted("paper", T0, 0, True, strategy))
    assert "Trailing stop 20% of margin (a 0.4% move), active from 30% of margin (a 0.6% move)" in (
        started
    )
    plain = render.engine_started_text(EngineStarted("paper", T0, 0, True, Strategy()))
    assert "Trailing" not in plain
