"""The words of /profit, /daily and /performance: figures to the cent, plurals right, the
zone named, the symbol list cut to a phone's screen with the rest summed up."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot import render
from bot.render.dashboard import duration
from tests.fakes.telegram.html_mode import parse_html, utf16_len
from trader.pnl import StatsTally
from trader.ports import TradePoint
from trader.trade_views import DailyView, DayStats, ProfitView, SymbolStats, TradeViews

DUBAI = ZoneInfo("Asia/Dubai")
ZERO = Decimal(0)


def tally(*nets: str, held: timedelta = timedelta(minutes=30)) -> StatsTally:
    counted = StatsTally(ZERO)
    for net in nets:
        counted.add(Decimal(net), Decimal("0.11"), held)
    return counted


def test_profit_of_all_time_has_every_figure() -> None:
    stats = tally("12.345", "-4", "7.5", held=timedelta(hours=1, minutes=5)).stats()
    text = render.profit_text(ProfitView(stats, None, None, DUBAI))
    assert text.splitlines() == [
        "<b>Profit</b> · all time",
        "Closed trades: 3 · won 2 · win rate 66.7%",
        "Net PnL: +15.84 USDT · fees 0.33 USDT",  # 15.845, to the even cent
        "Profit factor: 4.96",  # 19.845 / 4
        "Best trade: +12.34 USDT · worst: -4.00 USDT",
        "Average holding time: 1 h 05 min",
        "Max drawdown: 4.00 USDT",
    ]


def test_profit_of_some_days_names_the_first_day_and_the_zone() -> None:
    stats = tally("3").stats()
    week = render.profit_text(ProfitView(stats, 7, date(2025, 3, 4), DUBAI))
    assert week.splitlines()[0] == "<b>Profit</b> · last 7 days (since 2025-03-04, Asia/Dubai)"
    assert "Profit factor: n/a (no losing trade)" in week
    today = render.profit_text(ProfitView(stats, 1, date(2025, 3, 10), DUBAI))
    assert today.splitlines()[0] == "<b>Profit</b> · today (2025-03-10, Asia/Dubai)"


def test_profit_without_trades_says_so() -> None:
    text = render.profit_text(ProfitView(tally().stats(), 30, date(2025, 2, 9), DUBAI))
    assert text.splitlines()[1] == "No trades closed in this time."


def test_daily_lists_each_day_with_plurals_and_a_total() -> None:
    days = [
        DayStats(date(2025, 3, 10), tally("2.5").stats()),
        DayStats(date(2025, 3, 9), tally().stats()),
        DayStats(date(2025, 3, 8), tally("-1", "-0.004").stats()),
    ]
    total = tally("2.5", "-1", "-0.004").stats()
    text = render.daily_text(DailyView(days, total, DUBAI))
    assert text.splitlines() == [
        "<b>Daily PnL</b> · last 3 days (Asia/Dubai), newest first",
        "Mon 03-10: +2.50 USDT · 1 trade · fees 0.11 USDT",
        "Sun 03-09: 0.00 USDT · 0 trades · fees 0.00 USDT",
        "Sat 03-08: -1.00 USDT · 2 trades · fees 0.22 USDT",
        "<b>Total</b>: +1.50 USDT · 3 trades · fees 0.33 USDT",
    ]


def test_performance_is_cut_to_a_screen_and_the_rest_is_summed_up() -> None:
    rows = [SymbolStats(f"C{i}USDT", tally(str(10 - i), "-1").stats()) for i in range(5)]
    text = render.performance_text(rows, most=3)
    assert text.splitlines() == [
        "<b>Performance by symbol</b> · all time, best net PnL first",
        "<b>C0USDT</b>: +9.00 USDT · 2 trades · win rate 50.0%",
        "<b>C1USDT</b>: +8.00 USDT · 2 trades · win rate 50.0%",
        "<b>C2USDT</b>: +7.00 USDT · 2 trades · win rate 50.0%",
        "…and 2 more symbols not shown: 4 trades, +11.00 USDT net",
    ]
    assert render.performance_text([]) == "No closed trades yet."


def test_a_long_daily_list_stays_valid_telegram_html_when_split() -> None:
    start = datetime(2025, 1, 1, 12, tzinfo=UTC)
    points = [
        TradePoint(i + 1, start + timedelta(days=i), Decimal(i), Decimal("0.2"), "SOLUSDT", start)
        for i in range(90)
    ]
    view = TradeViews.of(DUBAI, points).daily(date(2025, 3, 31), 90)
    parts = render.split_message(render.daily_text(view))
    assert len(parts) == 2
    assert all(utf16_len(parse_html(part)[0]) <= render.MESSAGE_LIMIT for part in parts)
    assert sum(part.count("\n") + 1 for part in parts) == 92


def test_durations_read_as_a_trader_says_them() -> None:
    assert duration(timedelta(seconds=44.6)) == "45 s"
    assert duration(timedelta(minutes=12, seconds=20)) == "12 min"
    assert duration(timedelta(hours=3, minutes=5)) == "3 h 05 min"
    assert duration(timedelta(days=2, hours=4, minutes=59)) == "2 d 4 h"
    assert duration(None) == "—"
