"""A position closed in parts (several take-profits, a partial exit) is one trade in the
stats, as replay counts it: each part's PnL and fees count when it closes, the trade is
counted once, at its last part, won or lost on the sum of its parts. The stored history,
read in one go or as it grows, gives the figures ``trade_stats`` gives over the same rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render.dashboard import profit_text
from storage.repositories import SqliteRepositories
from tests.unit.storage_support import store_trades
from tests.unit.test_trade_aggregates import START, T0, amounts, read_models, run_with_repo
from trader import pnl
from trader.models import ClosedTrade, CloseReason, Side
from trader.trade_views import ProfitView

UTC_ZONE = ZoneInfo("UTC")


def part(
    signal_id: str, minute: int, net: str, *, last: bool = False, symbol: str = "SOLUSDT"
) -> ClosedTrade:
    net_pnl = Decimal(net)
    return ClosedTrade(
        signal_id=signal_id,
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal(1),
        entry_price=Decimal(100),
        exit_price=Decimal(101),
        leverage=10,
        margin=Decimal(10),
        entry_fee=Decimal("0.1"),
        exit_fee=Decimal("0.1"),
        gross_pnl=net_pnl + Decimal("0.2"),
        net_pnl=net_pnl,
        reason=CloseReason.STOP_LOSS if last else CloseReason.TAKE_PROFIT,
        opened_at=T0,
        closed_at=T0 + timedelta(minutes=minute),
        part=not last,
    )


def test_a_position_closed_in_three_parts_is_one_winning_trade() -> None:
    # TP1 +5, TP2 +3, the rest stopped at -2: one trade, +6, a win.
    trades = [part("a", 10, "5"), part("a", 20, "3"), part("a", 30, "-2", last=True)]
    stats = pnl.trade_stats(trades, START)
    assert (stats.trades, stats.wins, stats.losses) == (1, 1, 0)
    assert stats.net_pnl == Decimal(6) == stats.best == stats.worst == stats.gross_profit
    assert stats.gross_loss == 0
    assert stats.fees == Decimal("0.6")
    assert stats.average_holding == timedelta(minutes=30)  # opened to the last part
    assert stats.max_drawdown == Decimal(2)  # each part moved the balance when it closed


def test_parts_that_lose_overall_are_one_losing_trade_beside_a_whole_one() -> None:
    trades = [
        part("a", 1, "4"),
        part("b", 2, "7", last=True),  # closed whole, between a's parts
        part("a", 3, "-9", last=True),
    ]
    stats = pnl.trade_stats(trades, START)
    assert (stats.trades, stats.wins, stats.losses) == (2, 1, 1)
    assert (stats.best, stats.worst) == (Decimal(7), Decimal(-5))
    assert (stats.gross_profit, stats.gross_loss, stats.net_pnl) == (7, -5, 2)


def test_a_position_still_open_after_a_part_counts_its_money_not_a_trade() -> None:
    stats = pnl.trade_stats([part("a", 1, "4")], START)
    assert (stats.trades, stats.moves, stats.net_pnl, stats.fees) == (
        0,
        1,
        Decimal(4),
        Decimal("0.2"),
    )
    assert stats.win_rate is None
    # /profit says the money, not "no trades".
    view = ProfitView(stats, None, None, UTC_ZONE)
    assert profit_text(view).endswith(
        "No trade ended in this time; parts of positions closed: net PnL +4.00 USDT"
        " · fees 0.20 USDT"
    )


def positions_in_parts() -> st.SearchStrategy[list[ClosedTrade]]:
    """Positions of one to three parts, each part later than the one before, the positions'
    parts interleaved in close order, as the engine books them."""

    @st.composite
    def build(draw: st.DrawFn) -> list[ClosedTrade]:
        count = draw(st.integers(min_value=0, max_value=8))
        rows: list[ClosedTrade] = []
        for n in range(count):
            start = draw(st.integers(min_value=0, max_value=3000))
            steps = draw(st.lists(st.integers(1, 900), min_size=1, max_size=3))
            minute = start
            for k, step in enumerate(steps):
                minute += step
                last = k == len(steps) - 1
                row = part(f"s{n}", minute, "0", last=last, symbol=f"C{n % 3}USDT")
                net = draw(amounts(-500, 500))
                rows.append(replace(row, net_pnl=net, gross_pnl=net + Decimal("0.2")))
        rows.sort(key=lambda row: row.closed_at)
        return rows

    return build()


@settings(max_examples=40, deadline=None)
@given(rows=positions_in_parts(), cut=st.integers(min_value=0, max_value=24))
def test_stored_parts_read_in_one_go_or_as_they_grow_count_each_position_once(
    rows: list[ClosedTrade], cut: int
) -> None:
    positions = {row.signal_id for row in rows}

    async def scenario(repo: SqliteRepositories) -> None:
        reader = read_models(repo)
        # Booked in two goes, read after each: a position's last part may come after the
        # read that counted its first ones.
        await store_trades(repo, rows[:cut])
        await reader.performance()
        await store_trades(repo, rows[cut:])
        stored = await repo.all_trades()
        assert [row.part for row in stored] == [row.part for row in rows]
        stats = (await reader.performance()).stats
        assert stats == pnl.trade_stats(stored, START)
        assert stats.trades == len(positions)
        assert stats.net_pnl == sum((row.net_pnl for row in rows), Decimal(0))
        # The days' and symbols' tallies count the same trades.
        profit = (await reader.profit(UTC_ZONE)).stats
        counted = (stats.trades, stats.wins, stats.net_pnl, stats.best, stats.worst)
        assert (profit.trades, profit.wins, profit.net_pnl, profit.best, profit.worst) == counted
        by_symbol = await reader.symbol_performance(UTC_ZONE)
        assert sum(row.stats.trades for row in by_symbol) == len(positions)

    run_with_repo(scenario)


def test_a_position_whose_parts_close_on_two_days_is_counted_on_the_last() -> None:
    opened = T0 - timedelta(days=2)  # the clock is at T0: the last part closes today
    rows = [
        replace(part("a", -24 * 60, "5"), opened_at=opened),
        replace(part("a", 0, "-1", last=True), opened_at=opened),
    ]

    async def scenario(repo: SqliteRepositories) -> None:
        await store_trades(repo, rows)
        daily = await read_models(repo).daily(UTC_ZONE, 2)
        today, yesterday = daily.days
        assert (yesterday.stats.trades, yesterday.stats.net_pnl) == (0, Decimal(5))
        assert (today.stats.trades, today.stats.wins, today.stats.net_pnl) == (1, 1, Decimal(-1))
        assert (daily.total.trades, daily.total.wins, daily.total.net_pnl) == (1, 1, Decimal(4))

    run_with_repo(scenario)
