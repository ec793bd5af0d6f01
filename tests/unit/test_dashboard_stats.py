"""The figures of /profit, /daily and /performance: ``StatsTally``s by calendar day (in the
trader's zone) and by symbol, merged over any run of days, equal ``trade_stats`` over the
trades they cover, whatever the zone, the split into days or the order they were counted in.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.repositories import SqliteRepositories
from tests.unit.storage_support import store_trades
from trader import pnl
from trader.book import Book
from trader.clock import ManualClock
from trader.events import EventBus
from trader.exchange.base import Exchange
from trader.exits import Exits
from trader.models import ClosedTrade, CloseReason, Side
from trader.parts import Parts
from trader.ports import TradePoint
from trader.read_models import ReadModels
from trader.strategy import Strategy
from trader.tasks import Tasks
from trader.trade_views import TradeViews

T0 = datetime(2025, 3, 1, tzinfo=UTC)
ZERO = Decimal(0)
DUBAI = ZoneInfo("Asia/Dubai")  # UTC+4 all year
# DST both ways, a quarter-hour offset, and far west and east of UTC.
ZONES = [ZoneInfo(z) for z in ("UTC", "Asia/Dubai", "America/New_York", "Asia/Kathmandu")]
SYMBOLS = ("SOLUSDT", "BTCUSDT", "ETHUSDT", "DOGEUSDT")


@st.composite
def amounts(draw: st.DrawFn, low: int, high: int) -> Decimal:
    places = draw(st.integers(min_value=0, max_value=8))
    return draw(st.decimals(min_value=low, max_value=high, places=places))


@st.composite
def trades(draw: st.DrawFn, span_days: int = 20) -> ClosedTrade:
    net = draw(amounts(-1000, 1000))
    entry_fee, exit_fee = draw(amounts(0, 5)), draw(amounts(0, 5))
    # Whole minutes, so that ties in close time happen too; and the day edges of every zone.
    closed = T0 + timedelta(minutes=draw(st.integers(0, span_days * 24 * 60)))
    held = timedelta(
        seconds=draw(st.integers(0, 3 * 24 * 3600)), microseconds=draw(st.integers(0, 999_999))
    )
    return trade(draw(st.sampled_from(SYMBOLS)), closed, net, entry_fee, exit_fee, held)


def trade(
    symbol: str,
    closed: datetime,
    net: Decimal,
    entry_fee: Decimal = Decimal("0.1"),
    exit_fee: Decimal = Decimal("0.1"),
    held: timedelta = timedelta(minutes=15),
) -> ClosedTrade:
    return ClosedTrade(
        signal_id="s",
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal(1),
        entry_price=Decimal(100),
        exit_price=Decimal(101),
        leverage=10,
        margin=Decimal(10),
        entry_fee=entry_fee,
        exit_fee=exit_fee,
        gross_pnl=net + entry_fee + exit_fee,
        net_pnl=net,
        reason=CloseReason.TTL,
        opened_at=closed - held,
        closed_at=closed,
    )


def in_close_order(closed: Sequence[ClosedTrade]) -> list[ClosedTrade]:
    """As storage hands them out: by close time, ties in the order booked."""
    return sorted(closed, key=lambda t: t.closed_at)


def points(closed: Sequence[ClosedTrade], first_id: int = 1) -> list[TradePoint]:
    return [
        TradePoint(first_id + i, t.closed_at, t.net_pnl, t.fees, t.symbol, t.opened_at)
        for i, t in enumerate(closed)
    ]


def local_day(when: datetime, zone: ZoneInfo) -> date:
    return when.astimezone(zone).date()


# --- StatsTally ------------------------------------------------------------------------------


def test_trade_stats_has_best_worst_and_average_holding_time() -> None:
    closed = [
        trade("SOLUSDT", T0, Decimal("12.5"), held=timedelta(minutes=10)),
        trade("SOLUSDT", T0 + timedelta(hours=1), Decimal("-7.25"), held=timedelta(minutes=50)),
        trade("BTCUSDT", T0 + timedelta(hours=2), Decimal(3), held=timedelta(hours=1)),
    ]
    stats = pnl.trade_stats(closed, Decimal(1000))
    assert (stats.best, stats.worst) == (Decimal("12.5"), Decimal("-7.25"))
    assert stats.average_holding == timedelta(minutes=40)
    assert stats.profit_factor == Decimal("15.5") / Decimal("7.25")


def test_no_trade_has_no_best_worst_or_holding_time() -> None:
    stats = pnl.trade_stats([], Decimal(1000))
    assert (stats.best, stats.worst, stats.average_holding) == (None, None, None)


@settings(max_examples=80, deadline=None)
@given(
    closed=st.lists(trades(), max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=5),
    starts=st.lists(amounts(-500, 500), min_size=7, max_size=7),
)
def test_tallies_of_consecutive_runs_merge_into_the_tally_of_them_all(
    closed: list[ClosedTrade], cuts: list[int], starts: list[Decimal]
) -> None:
    ordered = in_close_order(closed)
    bounds = [0, *sorted(min(c, len(ordered)) for c in cuts), len(ordered)]
    merged = pnl.StatsTally(starts[0])
    for i, (low, high) in enumerate(itertools.pairwise(bounds)):
        run = pnl.StatsTally(starts[i + 1])  # where a run's path starts does not matter
        for t in ordered[low:high]:
            run.add(t.net_pnl, t.fees, t.closed_at - t.opened_at)
        merged.merge(run)
    assert merged.stats() == pnl.trade_stats(ordered, starts[0])


def test_merging_keeps_the_drawdown_from_an_earlier_peak_into_a_later_run() -> None:
    earlier, later = pnl.StatsTally(Decimal(100)), pnl.StatsTally(ZERO)
    earlier.add(Decimal(50), ZERO)  # peak 150
    earlier.add(Decimal(-10), ZERO)  # 140
    later.add(Decimal(5), ZERO)  # 145
    later.add(Decimal(-45), ZERO)  # 100: 50 below the peak before this run
    later.add(Decimal(20), ZERO)
    earlier.merge(later)
    assert earlier.max_drawdown == Decimal(50)
    assert earlier.equity == Decimal(120)


# --- by day and by symbol --------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    closed=st.lists(trades(), max_size=40),
    zone=st.sampled_from(ZONES),
    days=st.integers(1, 25),
    today_offset=st.integers(0, 22),
)
def test_profit_of_the_last_days_is_trade_stats_of_the_trades_closed_in_them(
    closed: list[ClosedTrade], zone: ZoneInfo, days: int, today_offset: int
) -> None:
    ordered = in_close_order(closed)
    views = TradeViews.of(zone, points(ordered))
    today = date(2025, 3, 1) + timedelta(days=today_offset)
    since = today - timedelta(days=days - 1)
    view = views.profit(today, days)
    assert view.since == since
    covered = [t for t in ordered if local_day(t.closed_at, zone) >= since]
    assert view.stats == pnl.trade_stats(covered, ZERO)
    assert views.profit(today).stats == pnl.trade_stats(ordered, ZERO)


@settings(max_examples=60, deadline=None)
@given(
    closed=st.lists(trades(), max_size=40),
    zone=st.sampled_from(ZONES),
    days=st.integers(1, 90),
    today_offset=st.integers(0, 22),
)
def test_daily_has_every_day_newest_first_each_with_its_own_trades(
    closed: list[ClosedTrade], zone: ZoneInfo, days: int, today_offset: int
) -> None:
    ordered = in_close_order(closed)
    today = date(2025, 3, 1) + timedelta(days=today_offset)
    view = TradeViews.of(zone, points(ordered)).daily(today, days)
    assert [entry.day for entry in view.days] == [today - timedelta(days=n) for n in range(days)]
    for entry in view.days:
        on_day = [t for t in ordered if local_day(t.closed_at, zone) == entry.day]
        assert entry.stats == pnl.trade_stats(on_day, ZERO)
    window = [t for t in ordered if view.days[-1].day <= local_day(t.closed_at, zone) <= today]
    assert view.total == pnl.trade_stats(window, ZERO)


def test_a_day_without_trades_is_listed_with_zeros() -> None:
    closed = [trade("SOLUSDT", T0 + timedelta(hours=12), Decimal(5))]
    view = TradeViews.of(ZoneInfo("UTC"), points(closed)).daily(date(2025, 3, 3), 3)
    assert [(e.day.day, e.stats.trades, e.stats.net_pnl) for e in view.days] == [
        (3, 0, ZERO),
        (2, 0, ZERO),
        (1, 1, Decimal(5)),
    ]


def test_days_are_calendar_days_in_the_zone_a_late_utc_trade_is_the_next_day_in_dubai() -> None:
    late = trade("SOLUSDT", datetime(2025, 3, 1, 22, 30, tzinfo=UTC), Decimal(-4))  # 02:30 +04
    early = trade("SOLUSDT", datetime(2025, 3, 1, 19, 59, tzinfo=UTC), Decimal(9))  # 23:59 +04
    closed = [early, late]
    in_dubai = TradeViews.of(DUBAI, points(closed)).daily(date(2025, 3, 2), 2)
    assert [(e.day, e.stats.net_pnl) for e in in_dubai.days] == [
        (date(2025, 3, 2), Decimal(-4)),
        (date(2025, 3, 1), Decimal(9)),
    ]
    in_utc = TradeViews.of(ZoneInfo("UTC"), points(closed)).daily(date(2025, 3, 2), 2)
    assert [e.stats.net_pnl for e in in_utc.days] == [ZERO, Decimal(5)]


@settings(max_examples=60, deadline=None)
@given(closed=st.lists(trades(), max_size=40))
def test_performance_is_trade_stats_per_symbol_best_net_first(closed: list[ClosedTrade]) -> None:
    ordered = in_close_order(closed)
    rows = TradeViews.of(DUBAI, points(ordered)).by_symbol()
    assert sorted(row.symbol for row in rows) == sorted({t.symbol for t in ordered})
    for row in rows:
        mine = [t for t in ordered if t.symbol == row.symbol]
        assert row.stats == pnl.trade_stats(mine, ZERO)
    keys = [(-row.stats.net_pnl, row.symbol) for row in rows]
    assert keys == sorted(keys)


@settings(max_examples=60, deadline=None)
@given(closed=st.lists(trades(), max_size=40), cut=st.integers(0, 40))
def test_views_counted_in_parts_equal_views_counted_at_once(
    closed: list[ClosedTrade], cut: int
) -> None:
    every = points(in_close_order(closed))
    whole = TradeViews.of(DUBAI, every)
    parts = TradeViews.of(DUBAI, every[:cut]).extended(every[cut:])
    assert parts is not None
    today = date(2025, 3, 21)
    assert parts.profit(today) == whole.profit(today)
    assert parts.daily(today, 30) == whole.daily(today, 30)
    assert parts.by_symbol() == whole.by_symbol()
    assert parts.last_id == whole.last_id


def test_extending_leaves_the_views_being_read_as_they_were() -> None:
    first = points([trade("SOLUSDT", T0, Decimal(1))])
    views = TradeViews.of(DUBAI, first)
    later = views.extended(points([trade("SOLUSDT", T0 + timedelta(minutes=1), Decimal(2))], 2))
    assert later is not None
    assert views.profit(date(2025, 3, 1)).stats.trades == 1
    assert later.profit(date(2025, 3, 1)).stats.trades == 2


def test_a_trade_booked_late_that_closed_earlier_asks_for_a_recount() -> None:
    views = TradeViews.of(DUBAI, points([trade("SOLUSDT", T0 + timedelta(hours=1), Decimal(1))]))
    assert views.extended(points([trade("SOLUSDT", T0, Decimal(2))], 2)) is None
    assert views.extended([]) is views


# --- through the read models, on the stored trades -------------------------------------------


def read_models(repo: SqliteRepositories, now: datetime) -> ReadModels:
    strategy = Strategy()
    none: Any = None  # the venue and the exits are never asked for stored trades
    clock = ManualClock(now)
    book = Book(repo=repo, clock=clock, strategy=strategy)
    parts = Parts(book, repo, cast(Exchange, none), clock, EventBus(), strategy, Tasks())
    return ReadModels(parts, exits=cast(Exits, none))


def test_read_models_count_trades_booked_since_and_recount_for_a_late_one() -> None:
    now = T0 + timedelta(days=3)
    first = [trade(SYMBOLS[i % 3], T0 + timedelta(hours=7 * i), Decimal(i - 4)) for i in range(9)]
    booked_late = trade("XRPUSDT", T0 + timedelta(hours=1), Decimal(-30))  # closed early on

    async def scenario(repo: SqliteRepositories) -> None:
        reader = read_models(repo, now)
        await store_trades(repo, first)
        assert (await reader.profit(DUBAI)).stats == pnl.trade_stats(first, ZERO)
        await store_trades(repo, [trade("SOLUSDT", now, Decimal(3))])
        await store_trades(repo, [booked_late])
        every = in_close_order(await repo.all_trades())
        assert (await reader.profit(DUBAI)).stats == pnl.trade_stats(every, ZERO)
        daily = await reader.daily(DUBAI, 4)
        assert daily.days[0].day == local_day(now, DUBAI)
        assert daily.total == pnl.trade_stats(every, ZERO)
        rows = await reader.symbol_performance(DUBAI)
        assert rows[-1].symbol == "XRPUSDT"
        assert sum(row.stats.trades for row in rows) == len(every)

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            repo = await SqliteRepositories.open(Path(tmp) / "paper.db")
            try:
                await scenario(repo)
            finally:
                await repo.close()

    asyncio.run(main())
