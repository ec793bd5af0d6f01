"""``reconcile.without_gone_take_profits``: the take-profits of a plan that have not filled and
the venue no longer holds leave it; those filled stay (their count is what breakeven and
/status read); a breakeven rule follows its TP, renumbered, or goes with it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from trader.models import Position, Side, TakeProfitLevel, TakeProfitPlan
from trader.reconcile import said_take_profits_gone, without_gone_take_profits
from trader.take_profits import shrunk

WHEN = datetime(2025, 10, 19, tzinfo=UTC)
TP1, TP2, TP3 = (TakeProfitLevel(Decimal(p), Decimal("0.5")) for p in (102, 104, 106))


def position(*, filled: str = "0", after: int | None = 2, moved: bool = False) -> Position:
    plan = TakeProfitPlan(
        (TP1, TP2, TP3),
        qty=Decimal("1.5"),
        breakeven_after=after,
        breakeven_price=None if after is None else Decimal("100.12"),
        breakeven_moved=moved,
        tp_filled_qty=Decimal(filled),
    )
    qty = Decimal("1.5") - Decimal(filled)
    return Position(
        "s", "SOLUSDT", Side.BUY, qty, Decimal(100), 10, Decimal(15), Decimal(98),
        TP3.price, Decimal("0.08"), WHEN, WHEN, take_profits=plan,
    )  # fmt: skip


def test_all_held_changes_nothing() -> None:
    whole = position()
    assert without_gone_take_profits(whole, [TP1, TP2, TP3]) == (whole, [])


def test_a_filled_take_profit_is_not_gone() -> None:
    after_tp1 = position(filled="0.5")
    assert without_gone_take_profits(after_tp1, [TP2, TP3]) == (after_tp1, [])


def test_one_gone_before_the_breakeven_tp_renumbers_the_rule() -> None:
    kept, gone = without_gone_take_profits(position(after=2), [TP2, TP3])
    assert gone == [(1, TP1)]
    assert kept.take_profits is not None
    assert kept.take_profits.levels == (TP2, TP3)
    assert kept.take_profits.breakeven_after == 1  # still after the TP at 104
    assert kept.take_profit == TP3.price


def test_the_breakeven_tp_gone_takes_the_rule_with_it() -> None:
    kept, gone = without_gone_take_profits(position(after=2), [TP1, TP3])
    assert gone == [(2, TP2)]
    assert kept.take_profits is not None
    assert (kept.take_profits.breakeven_after, kept.take_profits.breakeven_price) == (None, None)
    said = said_take_profits_gone(kept, gone, breakeven_dropped=True)
    assert "TP2 104 × 0.5 is no longer on Bybit" in said
    assert said.endswith("the stop-loss will not move to breakeven")


def test_a_breakeven_move_made_already_stays() -> None:
    kept, gone = without_gone_take_profits(position(filled="1.0", after=2, moved=True), [])
    assert gone == [(3, TP3)]
    assert kept.take_profits is not None
    assert kept.take_profits.levels == (TP1, TP2)
    assert kept.take_profits.filled() == 2
    assert kept.take_profits.breakeven_moved


def test_every_take_profit_gone_leaves_the_stop_loss_alone() -> None:
    kept, gone = without_gone_take_profits(position(after=None), [])
    assert [number for number, _ in gone] == [1, 2, 3]
    assert (kept.take_profits, kept.take_profit) == (None, Decimal(0))
    said = said_take_profits_gone(kept, gone, breakeven_dropped=False)
    assert "TP1 102 × 0.5, TP2 104 × 0.5, TP3 106 × 0.5 are no longer on Bybit" in said


def test_a_take_profit_the_venue_cut_in_size_is_still_held() -> None:
    # After a shrink that was no TP (auto-deleveraging), Bybit cuts TP1's size: still there.
    cut = TakeProfitLevel(TP1.price, Decimal("0.2"))
    whole = position()
    assert without_gone_take_profits(whole, [cut, TP2, TP3]) == (whole, [])


def test_only_the_take_profit_the_venue_named_can_go() -> None:
    # The push named TP3; TP1 missing from a read (triggering as it was read) stays.
    kept, gone = without_gone_take_profits(position(after=None), [TP2], only=TP3.price)
    assert gone == [(3, TP3)]
    assert kept.take_profits is not None
    assert kept.take_profits.levels == (TP1, TP2)


# --- take_profits.shrunk: a shrink that is no take-profit cuts the plan as Bybit cuts TPs ---


def plan_of(filled: str = "0", after: int | None = 2) -> TakeProfitPlan:
    plan = position(filled=filled, after=after).take_profits
    assert plan is not None
    return plan


def test_a_shrink_within_what_the_tps_leave_changes_nothing() -> None:
    assert shrunk(plan_of(), Decimal("1.5")) == plan_of()


def test_the_earliest_unfilled_take_profit_is_cut_first() -> None:
    plan = shrunk(plan_of(), Decimal("1.2"))  # 0.3 too much: TP1 0.5 → 0.2
    assert plan.levels == (TakeProfitLevel(TP1.price, Decimal("0.2")), TP2, TP3)
    assert plan.breakeven_after == 2


def test_a_take_profit_cut_to_nothing_goes_and_the_rule_follows_its_own() -> None:
    plan = shrunk(plan_of(), Decimal("0.8"))  # 0.7 too much: TP1 gone, TP2 0.5 → 0.3
    assert plan.levels == (TakeProfitLevel(TP2.price, Decimal("0.3")), TP3)
    assert plan.breakeven_after == 1  # still after the TP at 104
    gone_with_it = shrunk(plan_of(), Decimal("0.4"))  # TP1 and TP2 gone
    assert gone_with_it.levels == (TakeProfitLevel(TP3.price, Decimal("0.4")),)
    assert (gone_with_it.breakeven_after, gone_with_it.breakeven_price) == (None, None)


def test_filled_take_profits_are_left_as_they_were() -> None:
    plan = shrunk(plan_of(filled="0.5", after=1), Decimal("0.6"))  # TP2 0.5 → 0.1
    assert plan.levels == (TP1, TakeProfitLevel(TP2.price, Decimal("0.1")), TP3)
    assert plan.filled() == 1
    assert plan.breakeven_after == 1  # its TP filled already


def test_a_fill_that_names_its_level_counts_it_whatever_its_size() -> None:
    # The plan's TP1 is 0.5; Bybit cut it otherwise than the plan guessed and filled 0.2.
    plan = plan_of(after=1)
    assert plan.took(Decimal("0.2")).filled() == 0  # by size: not TP1 yet
    named = plan.took(Decimal("0.2"), TP1.price)
    assert named.filled() == 1
    assert named.took(Decimal("0.2"), TP1.price).filled_prices == (TP1.price,)  # once


def test_the_furthest_level_named_counts_the_nearer_ones_filled_too() -> None:
    # Only TP2's fill named its price (TP1's was booked before prices were kept, say):
    # TPs trigger in price order, so TP1 has gone too, and nothing after TP2.
    named = plan_of(after=None).took(Decimal("0.5"), TP2.price)
    assert named.filled() == 2
    assert shrunk(named, Decimal("0.3")).levels[:2] == (TP1, TP2)  # filled: never cut


def test_a_named_price_that_is_no_level_counts_nothing_not_the_next_by_size() -> None:
    # The plan dropped TP1 (guessing Bybit's cut) but Bybit cut TP3: its TP1 fills at 102.
    plan = replace(plan_of(after=2), levels=(TP2, TP3), breakeven_after=1)
    filled = plan.took(Decimal("0.5"), TP1.price)
    assert filled.filled() == 0  # TP2 (the rule's TP now) has not filled: no early move
