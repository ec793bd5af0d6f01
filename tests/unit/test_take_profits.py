"""Several take-profits and the breakeven move, pure parts: the strategy keys, the plan's TP
prices and qtys, the breakeven price, how many TPs have filled, and the chat lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.render.notes import plan_lines
from storage.codec import plan_from_db, plan_to_db
from trader.errors import ConfigError, OrderRejected
from trader.models import Instrument, Position, Side, Signal, TakeProfitLevel, TakeProfitPlan
from trader.strategy import Strategy, parse_strategy
from trader.take_profits import (
    Share,
    breakeven_due,
    breakeven_price,
    level_prices,
    make_plan,
    place,
    split_qty,
)

TICKS = [Decimal("0.1"), Decimal("0.01"), Decimal("0.0001"), Decimal(1)]
STEPS = [Decimal("0.001"), Decimal("0.1"), Decimal(1), Decimal(10)]
WHEN = datetime(2025, 10, 19, 5, 25, tzinfo=UTC)
TWO = ({"pct": 20, "size": 50}, {"pct": 40, "size": 50})


def sol(tick: str = "0.01", step: str = "0.1", min_qty: str = "0.1") -> Instrument:
    return Instrument(
        "SOLUSDT", Decimal(tick), Decimal(step), Decimal(min_qty), Decimal(10**6), Decimal(5)
    )


# --- the strategy keys ------------------------------------------------------------------------


def test_the_keys_are_read_and_not_warned_about() -> None:
    strategy = parse_strategy({"take_profits": list(TWO), "breakeven_after_tp": 1})
    assert strategy.take_profits == (
        Share(Decimal(20), Decimal(50)),
        Share(Decimal(40), Decimal(50)),
    )
    assert strategy.breakeven_after_tp == 1
    assert strategy.warnings == ()
    signal = parse_strategy({"targets_from_signal": True, "breakeven_after_tp": 1})
    assert signal.targets_from_signal
    assert signal.warnings == ()


def test_without_the_keys_nothing_changes() -> None:
    strategy = parse_strategy({})
    assert (strategy.take_profits, strategy.targets_from_signal) == ((), False)
    assert strategy.breakeven_after_tp is None
    assert (
        make_plan(strategy, Side.BUY, Decimal(100), Decimal(1), leverage=10, instrument=sol())
        is None
    )


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"take_profits": [{"pct": 20, "size": 60}]}, "take_profits"),
        ({"take_profits": [{"pct": 20, "size": 50}, {"pct": 20, "size": 50}]}, "take_profits"),
        ({"take_profits": [{"pct": 0, "size": 100}]}, "take_profits"),
        ({"take_profits": [{"pct": 20, "size": -1}, {"pct": 30, "size": 101}]}, "take_profits"),
        ({"take_profits": [{"pct": 20}]}, "take_profits"),
        ({"take_profits": []}, "take_profits"),
        (
            {
                "take_profits": [{"pct": n + 1, "size": 5} for n in range(20)]
                + [{"pct": 99, "size": 0}]
            },
            "take_profits",
        ),
        ({"take_profits": "20,40"}, "take_profits"),
        ({"targets_from_signal": "yes"}, "targets_from_signal"),
        (
            {"targets_from_signal": True, "take_profits": [{"pct": 20, "size": 100}]},
            "targets_from_signal",
        ),
        ({"breakeven_after_tp": 1}, "breakeven_after_tp"),
        ({"take_profits": list(TWO), "breakeven_after_tp": 2}, "breakeven_after_tp"),
        ({"take_profits": list(TWO), "breakeven_after_tp": 0}, "breakeven_after_tp"),
        ({"take_profits": list(TWO), "breakeven_after_tp": Decimal("1.5")}, "breakeven_after_tp"),
        ({"targets_from_signal": True, "breakeven_after_tp": 2}, "breakeven_after_tp"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_strategy(data)
    message = str(caught.value)
    assert message.startswith(f"{key}:")
    assert "\n" not in message


def test_twenty_levels_are_allowed() -> None:
    levels = [{"pct": n + 1, "size": 5} for n in range(20)]
    assert len(parse_strategy({"take_profits": levels}).take_profits) == 20


# --- prices and qtys --------------------------------------------------------------------------


@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    tick=st.sampled_from(TICKS),
    ticks=st.integers(min_value=2, max_value=10**7),
    offset=st.decimals(min_value=0, max_value=Decimal("0.999"), places=3),
    pcts=st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=900, places=2),
        min_size=1,
        max_size=20,
        unique=True,
    ),
    leverage=st.integers(min_value=1, max_value=125),
)
def test_tp_prices_are_on_the_tick_beyond_the_entry_and_increasing_away_from_it(
    side: Side, tick: Decimal, ticks: int, offset: Decimal, pcts: list[Decimal], leverage: int
) -> None:
    entry = (ticks + offset) * tick
    prices = level_prices(side, entry, sorted(pcts), leverage=leverage, tick=tick)
    assert len(prices) <= len(pcts)
    if side is Side.BUY:
        assert len(prices) == len(pcts)
    previous = entry
    for tp in prices:
        assert tp % tick == 0
        assert tp > 0
        assert side.sign * (tp - previous) > 0  # beyond the entry, then beyond the one before
        previous = tp


@given(
    step=st.sampled_from(STEPS),
    steps=st.integers(min_value=1, max_value=10**6),
    min_steps=st.integers(min_value=1, max_value=50),
    sizes=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=20),
)
def test_tp_qtys_add_up_to_the_position_each_a_multiple_of_the_step(
    step: Decimal, steps: int, min_steps: int, sizes: list[int]
) -> None:
    qty, min_qty = steps * step, min(min_steps, steps) * step
    total = sum(sizes)
    percents = [Decimal(size) * 100 / total for size in sizes]  # summing to 100, near enough
    qtys = split_qty(qty, percents, step=step, min_qty=min_qty)
    assert len(qtys) == len(sizes)
    assert sum(qtys) == qty
    for part in qtys:
        assert part % step == 0
        assert part == 0 or part >= min_qty
        assert 0 <= part <= qty


def test_a_tp_below_the_minimum_qty_merges_into_the_next() -> None:
    qtys = split_qty(
        Decimal("1.0"),
        [Decimal(5), Decimal(45), Decimal(50)],
        step=Decimal("0.1"),
        min_qty=Decimal("0.1"),
    )
    assert qtys == [Decimal(0), Decimal("0.5"), Decimal("0.5")]
    # the last below it goes to the one before
    qtys = split_qty(
        Decimal("1.0"), [Decimal(95), Decimal(5)], step=Decimal("0.1"), min_qty=Decimal("0.2")
    )
    assert qtys == [Decimal("1.0"), Decimal(0)]


@given(
    side=st.sampled_from([Side.BUY, Side.SELL]),
    tick=st.sampled_from(TICKS),
    ticks=st.integers(min_value=10, max_value=10**7),
    offset=st.decimals(min_value=0, max_value=Decimal("0.999"), places=3),
    fee_rate=st.decimals(min_value=0, max_value=Decimal("0.0099"), places=5),
    qty=st.decimals(min_value=Decimal("0.001"), max_value=10**5, places=3),
)
def test_the_breakeven_exit_nets_zero_or_just_above(
    side: Side, tick: Decimal, ticks: int, offset: Decimal, fee_rate: Decimal, qty: Decimal
) -> None:
    entry = (ticks + offset) * tick

    def net(exit_price: Decimal) -> Decimal:  # fees unrounded: the rate on each notional
        gross = side.sign * (exit_price - entry) * qty
        return gross - fee_rate * qty * entry - fee_rate * qty * exit_price

    price = breakeven_price(side, entry, fee_rate=fee_rate, tick=tick)
    assert price % tick == 0
    assert net(price) >= 0
    # Less than one tick's worth above flat: a tick moves a short's exit fee too.
    assert net(price) < qty * tick * (1 + fee_rate)


def test_a_two_target_plan_with_breakeven() -> None:
    strategy = parse_strategy(
        {"parameters": {"leverage": 10}, "take_profits": list(TWO), "breakeven_after_tp": 1}
    )
    plan = make_plan(
        strategy, Side.BUY, Decimal(100), Decimal("1.5"), leverage=10, instrument=sol()
    )
    assert plan == TakeProfitPlan(
        (
            TakeProfitLevel(Decimal("102.00"), Decimal("0.7")),
            TakeProfitLevel(Decimal("104.00"), Decimal("0.8")),
        ),
        qty=Decimal("1.5"),
        breakeven_after=1,
        breakeven_price=Decimal("100.12"),  # 100 × 1.00055 ÷ 0.99945 = 100.110..., up
    )


def signal(target_min: str | None, target_max: str | None) -> Signal:
    return Signal(
        "s",
        WHEN,
        "SOLUSDT",
        "SELL",
        Decimal("0.9"),
        entry_price=Decimal(100),
        target_min=None if target_min is None else Decimal(target_min),
        target_max=None if target_max is None else Decimal(target_max),
    )


def test_targets_from_signal_the_nearer_first_and_only_on_the_right_side() -> None:
    strategy = Strategy(targets_from_signal=True, leverage=10)
    plan = make_plan(
        strategy,
        Side.SELL,
        Decimal(100),
        Decimal(2),
        leverage=10,
        instrument=sol(),
        signal=signal("95", "98"),
    )
    assert plan is not None
    assert [(x.price, x.qty) for x in plan.levels] == [
        (Decimal("98.00"), Decimal("1.0")),
        (Decimal("95.00"), Decimal("1.0")),
    ]
    # one on the wrong side: the other takes all of it
    plan = make_plan(
        strategy,
        Side.SELL,
        Decimal(100),
        Decimal(2),
        leverage=10,
        instrument=sol(),
        signal=signal("97", "103"),
    )
    assert plan is not None
    assert [(x.price, x.qty) for x in plan.levels] == [(Decimal("97.00"), Decimal(2))]
    # none: parameters.tp (40% of margin at 10x: 4%) for all of it
    plan = make_plan(
        strategy,
        Side.SELL,
        Decimal(100),
        Decimal(2),
        leverage=10,
        instrument=sol(),
        signal=signal(None, "101"),
    )
    assert plan is not None
    assert [(x.price, x.qty) for x in plan.levels] == [(Decimal("96.00"), Decimal(2))]


def test_how_many_have_filled_counts_take_profit_fills_only() -> None:
    plan = TakeProfitPlan(
        (
            TakeProfitLevel(Decimal(102), Decimal("0.7")),
            TakeProfitLevel(Decimal(104), Decimal("0.8")),
        ),
        qty=Decimal("1.5"),
        breakeven_after=1,
        breakeven_price=Decimal("100.12"),
    )
    took = [plan.took(Decimal(qty)).filled() for qty in ("0", "0.5", "0.7", "1.5")]
    assert took == [0, 0, 1, 2]
    assert plan.took(Decimal("0.7")).took(Decimal("0.8")).filled() == 2
    shrunk = Position(
        "s",
        "SOLUSDT",
        Side.BUY,
        Decimal("0.8"),
        Decimal(100),
        10,
        Decimal(8),
        Decimal(98),
        Decimal(104),
        Decimal("0.05"),
        WHEN,
        WHEN,
        take_profits=plan,
    )
    # Shrunk to 0.8 by something else than its TP1 (a partial close, ADL): no breakeven move.
    assert breakeven_due(shrunk) is None
    position = replace(shrunk, take_profits=plan.took(Decimal("0.7")))  # TP1 filled
    assert breakeven_due(position) == Decimal("100.12")
    assert plan_from_db(plan_to_db(position.take_profits)) == position.take_profits
    named = plan.took(Decimal("0.7"), Decimal(102))  # with its level's trigger price
    assert plan_from_db(plan_to_db(named)) == named
    assert named.filled_prices == (Decimal(102),)
    lines = plan_lines(position, Decimal("0.01"))
    assert lines == [
        "SL 98.00 · moving to breakeven 100.12",
        "TP1 102.00 × 0.7 ✓ · TP2 104.00 × 0.8",
    ]


class RefusesTheSecond:
    """A venue that takes the first partial take-profit and refuses the next."""

    def __init__(self) -> None:
        self.placed: list[Decimal] = []

    async def set_take_profit(self, symbol: str, price: Decimal, qty: Decimal) -> None:
        if self.placed:
            raise OrderRejected("fake: refused", code=10001)
        self.placed.append(price)


async def test_breakeven_is_kept_when_only_a_later_tp_is_refused() -> None:
    """TP2 refused: its share is open with no TP, and breakeven after TP1 still applies."""
    plan = TakeProfitPlan(
        (
            TakeProfitLevel(Decimal(102), Decimal("0.7")),
            TakeProfitLevel(Decimal(104), Decimal("0.8")),
        ),
        qty=Decimal("1.5"),
        breakeven_after=1,
        breakeven_price=Decimal("100.12"),
    )
    position = Position(
        "s", "SOLUSDT", Side.BUY, Decimal("1.5"), Decimal(100), 10, Decimal(15), Decimal(98),
        Decimal(0), Decimal("0.08"), WHEN, WHEN,
    )  # fmt: skip
    venue: Any = RefusesTheSecond()
    kept, problem = await place(venue, plan, position)
    assert problem is not None
    assert "take-profit 2 not set" in problem
    assert kept.take_profits is not None
    assert [level.price for level in kept.take_profits.levels] == [Decimal(102)]
    assert kept.take_profits.breakeven_after == 1  # still moves after TP1
    assert kept.take_profit == Decimal(102)
