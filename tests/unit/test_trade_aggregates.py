"""The report's stats from the stored trades, counted once and then kept up to date: exactly
the figures ``trade_stats`` gave over every trade before (same Decimals, same digits), for
any trades, stored in any order, counted in one go or in parts."""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

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
from trader.read_models import ReadModels, TradeHistory
from trader.strategy import Strategy
from trader.tasks import Tasks

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
START = Decimal("1000.5")


def stats_as_before(trades: Sequence[ClosedTrade], starting_balance: Decimal) -> pnl.Stats:
    """``trade_stats`` as it was before the stats were kept incrementally (the reference)."""
    wins = [t.net_pnl for t in trades if t.net_pnl > 0]
    losses = [t.net_pnl for t in trades if t.net_pnl <= 0]
    curve = pnl.equity_curve(trades, starting_balance)
    peak = starting_balance
    drawdown = Decimal(0)
    for _, equity in curve:
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    return pnl.Stats(
        trades=len(trades),
        wins=len(wins),
        losses=len(losses),
        net_pnl=sum((t.net_pnl for t in trades), Decimal(0)),
        gross_profit=sum(wins, Decimal(0)),
        gross_loss=sum(losses, Decimal(0)),
        fees=sum((t.fees for t in trades), Decimal(0)),
        max_drawdown=drawdown,
        starting_balance=starting_balance,
    )


def exact(stats: pnl.Stats) -> tuple[Any, ...]:
    """Every figure, Decimals by their digits: 1.50 and 1.5 differ here."""
    return (
        stats.trades,
        stats.wins,
        stats.losses,
        *(
            str(value)
            for value in (
                stats.net_pnl,
                stats.gross_profit,
                stats.gross_loss,
                stats.fees,
                stats.max_drawdown,
                stats.starting_balance,
                stats.win_rate,
                stats.profit_factor,
                stats.roi,
            )
        ),
    )


@st.composite
def amounts(draw: st.DrawFn, low: int, high: int) -> Decimal:
    places = draw(st.integers(min_value=0, max_value=8))
    value = draw(st.decimals(min_value=low, max_value=high, places=places))
    # Forms the text column can hold as well: an exponent, a negative zero.
    return draw(st.sampled_from([value, value, value, Decimal("-0"), Decimal("1E+2")]))


@st.composite
def closed_trades(draw: st.DrawFn) -> ClosedTrade:
    net = draw(amounts(-(10**5), 10**5))
    entry_fee, exit_fee = draw(amounts(0, 50)), draw(amounts(0, 50))
    closed = T0 + timedelta(minutes=draw(st.integers(min_value=0, max_value=40)))  # ties too
    return ClosedTrade(
        signal_id="s",
        symbol="SOLUSDT",
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
        opened_at=closed - timedelta(minutes=15),
        closed_at=closed,
    )


def read_models(repo: SqliteRepositories, starting_balance: Decimal = START) -> ReadModels:
    strategy = Strategy(paper_balance_usdt=starting_balance)
    book = Book(repo=repo, clock=ManualClock(T0), strategy=strategy)
    # Performance reads the stored trades only: the venue and exits are never asked (only
    # the mode is looked at: paper draws the starting balance plus PnL).
    none: Any = None
    paper: Any = SimpleNamespace(mode="paper")
    clock = ManualClock(T0)
    parts = Parts(book, repo, cast(Exchange, paper), clock, EventBus(), strategy, Tasks())
    return ReadModels(parts, exits=cast(Exits, none))


def run_with_repo(scenario: Any) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            repo = await SqliteRepositories.open(Path(tmp) / "paper.db")
            try:
                await scenario(repo)
            finally:
                await repo.close()

    asyncio.run(main())


@settings(max_examples=60, deadline=None)
@given(trades=st.lists(closed_trades(), max_size=40), seed=st.integers(0, 2**32))
def test_trade_stats_equals_the_old_figures_in_any_input_order(
    trades: list[ClosedTrade], seed: int
) -> None:
    random.Random(seed).shuffle(trades)
    in_close_order = sorted(trades, key=lambda t: t.closed_at)
    assert exact(pnl.trade_stats(trades, START)) == exact(stats_as_before(in_close_order, START))
    assert exact(pnl.trade_stats(trades, START)) == exact(stats_as_before(trades, START))


@settings(max_examples=40, deadline=None)
@given(
    first=st.lists(closed_trades(), max_size=30),
    later=st.lists(closed_trades(), max_size=30),
)
def test_report_stats_equal_trade_stats_over_every_stored_trade(
    first: list[ClosedTrade], later: list[ClosedTrade]
) -> None:
    """Counted once, then only the trades booked since: a later trade closing before one
    counted already (ties included) is counted in its place, as a full read would."""

    async def scenario(repo: SqliteRepositories) -> None:
        reader = read_models(repo)
        await store_trades(repo, first)
        before = await reader.performance()
        assert exact(before.stats) == exact(stats_as_before(await repo.all_trades(), START))
        await store_trades(repo, later)
        after = await reader.performance()
        every = await repo.all_trades()
        assert exact(after.stats) == exact(stats_as_before(every, START))
        assert exact(after.stats) == exact(pnl.trade_stats(every, START))
        assert after.curve == pnl.equity_curve(every, START)  # few trades: every point

    run_with_repo(scenario)


def test_a_trade_booked_late_that_closed_earlier_is_counted_in_close_order() -> None:
    def trade(minute: int, net: str) -> ClosedTrade:
        return closed_trade(T0 + timedelta(minutes=minute), Decimal(net))

    async def scenario(repo: SqliteRepositories) -> None:
        reader = read_models(repo, Decimal(100))
        await store_trades(repo, [trade(0, "50"), trade(10, "-30")])
        assert (await reader.performance()).stats.max_drawdown == Decimal(30)
        # Booked after them (a lost exit found by reconciliation), closed between them.
        await store_trades(repo, [trade(5, "-40")])
        performance = await reader.performance()
        assert performance.stats.max_drawdown == Decimal(70)  # 150 → 110 → 80
        assert [e for _, e in performance.curve] == [Decimal(150), Decimal(110), Decimal(80)]

    run_with_repo(scenario)


def test_only_the_trades_booked_since_are_read_again() -> None:
    async def scenario(repo: SqliteRepositories) -> None:
        reader = read_models(repo)
        await store_trades(
            repo, [closed_trade(T0 + timedelta(minutes=i), Decimal(i)) for i in range(5)]
        )
        await reader.performance()
        read: list[int] = []
        fold = repo.fold_trades

        async def counting_fold(folder: Any, after_id: int = 0) -> Any:
            read.append(after_id)
            return await fold(folder, after_id)

        repo.fold_trades = counting_fold  # type: ignore[method-assign]
        await store_trades(repo, [closed_trade(T0 + timedelta(hours=1), Decimal(1))])
        assert (await reader.performance()).stats.trades == 6
        assert read == [5]  # after the fifth trade: one trade read, not six

    run_with_repo(scenario)


def test_whole_history_is_folded_off_the_event_loop() -> None:
    async def scenario(repo: SqliteRepositories) -> None:
        await store_trades(repo, [closed_trade(T0, Decimal(1))])
        loop_thread: list[bool] = []

        def fold(points: Any) -> TradeHistory:
            try:
                asyncio.get_running_loop()
                loop_thread.append(True)
            except RuntimeError:
                loop_thread.append(False)
            return TradeHistory.of(START, points)

        history = await repo.fold_trades(fold)
        assert history.tally.trades == 1
        assert loop_thread == [False]

    run_with_repo(scenario)


def test_the_stats_of_no_trade() -> None:
    async def scenario(repo: SqliteRepositories) -> None:
        performance = await read_models(repo).performance()
        assert exact(performance.stats) == exact(stats_as_before([], START))
        assert performance.curve == []

    run_with_repo(scenario)


def test_history_is_counted_by_partial_folds_as_by_one() -> None:
    trades = [closed_trade(T0 + timedelta(seconds=i), Decimal(i % 7 - 3)) for i in range(50)]
    points = [pnl_point(i + 1, t) for i, t in enumerate(trades)]
    whole = TradeHistory.of(START, points)
    parts = TradeHistory.of(START, points[:20]).extended(points[20:])
    assert parts is not None
    assert exact(parts.tally.stats()) == exact(whole.tally.stats())
    assert parts.curve.points() == whole.curve.points()
    assert (parts.last_id, parts.last_closed) == (50, trades[-1].closed_at)


def closed_trade(closed_at: datetime, net: Decimal) -> ClosedTrade:
    return ClosedTrade(
        signal_id="s",
        symbol="SOLUSDT",
        side=Side.SELL,
        qty=Decimal(1),
        entry_price=Decimal(100),
        exit_price=Decimal(99),
        leverage=10,
        margin=Decimal(10),
        entry_fee=Decimal("0.055"),
        exit_fee=Decimal("0.05445"),
        gross_pnl=net + Decimal("0.10945"),
        net_pnl=net,
        reason=CloseReason.TTL,
        opened_at=closed_at - timedelta(minutes=15),
        closed_at=closed_at,
    )


def pnl_point(ident: int, trade: ClosedTrade) -> TradePoint:
    return TradePoint(ident, trade.closed_at, trade.net_pnl, trade.fees)
