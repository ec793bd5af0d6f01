"""Rendering: numbers for humans, every dynamic value escaped, long texts split for Telegram."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import render
from trader.confirmation import Decision, Verdict
from trader.events import (
    EngineStarted,
    OrderFailed,
    PositionClosed,
    PositionOpened,
    PositionReduced,
)
from trader.models import ClosedTrade, CloseReason, Position, Side
from trader.read_models import PositionView, Status
from trader.rules import Limits
from trader.strategy import Strategy

T0 = datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)
LIMITS = Limits(15, Decimal(500), Decimal(100), Decimal("0.5"), 50)


def position(symbol: str = "SOLUSDT") -> Position:
    return Position(
        signal_id="s1",
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal("26.30"),
        entry_price=Decimal("190.01"),
        leverage=50,
        margin=Decimal("99.94"),
        stop_loss=Decimal("188.49"),
        take_profit=Decimal("192.9"),
        entry_fee=Decimal("2.74"),
        opened_at=T0,
        expires_at=T0 + timedelta(minutes=15),
    )


def trade(net: str, reason: CloseReason = CloseReason.TAKE_PROFIT) -> ClosedTrade:
    return ClosedTrade(
        signal_id="s1",
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("26.3"),
        entry_price=Decimal("190.01"),
        exit_price=Decimal("192.88"),
        leverage=50,
        margin=Decimal("99.94"),
        entry_fee=Decimal("2.748"),
        exit_fee=Decimal("2.79"),
        gross_pnl=Decimal("75.48"),
        net_pnl=Decimal(net),
        reason=reason,
        opened_at=T0,
        closed_at=T0 + timedelta(minutes=3),
    )


def test_usdt_is_to_the_cent_with_separators() -> None:
    assert render.usdt(Decimal("1234.5678")) == "1,234.57 USDT"
    assert render.usdt(Decimal("0")) == "0.00 USDT"


def test_pnl_carries_its_sign() -> None:
    assert render.pnl(Decimal("12.3")) == "+12.30 USDT"
    assert render.pnl(Decimal("-4.054")) == "-4.05 USDT"
    assert render.pnl(Decimal("0.001")) == "0.00 USDT"


def test_prices_follow_the_tick_size() -> None:
    assert render.price(Decimal("192.9"), Decimal("0.01")) == "192.90"
    assert render.price(Decimal("110000"), Decimal("0.10")) == "110000.0"
    assert render.price(Decimal("0.000123400"), None) == "0.0001234"
    assert render.price(Decimal("1E+2"), None) == "100"


def test_status_lists_each_position_with_its_numbers() -> None:
    view = PositionView(position(), Decimal("191"), Decimal("24.5"), Decimal("0.01"))
    status = Status("paper", True, [view], Decimal("-3.2"), Decimal("996.8"), LIMITS, False)
    text = render.status_text(status, ZoneInfo("UTC"))
    assert "PAPER · trading ON" in text
    assert "Balance: 996.80 USDT" in text
    assert "Today: -3.20 USDT" in text
    assert "Open positions: 1/15" in text
    assert "<b>SOLUSDT</b> long 26.3 @ 190.01" in text
    assert "SL 188.49 · TP 192.90 · uPnL +24.50 USDT" in text


def test_dynamic_values_are_escaped() -> None:
    view = PositionView(position("<b>&X"), None, None)
    status = Status("paper", False, [view], Decimal(0), Decimal(0), LIMITS, True)
    text = render.status_text(status, ZoneInfo("UTC"))
    assert "&lt;b&gt;&amp;X" in text
    assert "<b>&X" not in text
    failed = render.order_failed_text(OrderFailed("s1", "SOLUSDT", "qty < min & <oops>", T0))
    assert "qty &lt; min &amp; &lt;oops&gt;" in failed


def test_notifications_say_what_happened() -> None:
    opened = render.opened_text(PositionOpened(position(), T0, Decimal("0.01")))
    assert "Opened <b>SOLUSDT</b> long" in opened
    assert "qty 26.3 @ 190.01" in opened
    assert "SL 188.49 · TP 192.90" in opened
    assert "margin 99.94 USDT · 50x" in opened
    closed = render.closed_text(PositionClosed(trade("70.00"), Decimal("0.01")))
    assert "TP (take-profit)" in closed
    assert "net PnL <b>+70.00 USDT</b>" in closed
    assert "fees 5.54 USDT" in closed
    assert render.closed_text(PositionClosed(trade("-5", CloseReason.STOP_LOSS))).startswith("🔴")


def test_a_partial_fill_and_a_partial_close_say_what_stays_open() -> None:
    opened = render.opened_text(
        PositionOpened(position(), T0, Decimal("0.01"), ordered_qty=Decimal("40"))
    )
    assert "filled 26.3 of 40" in opened
    rest = replace(position(), qty=Decimal("16.3"))
    part = replace(trade("-3.10", CloseReason.LIQUIDATION), qty=Decimal("10"))
    reduced = render.reduced_text(PositionReduced(part, rest, Decimal("0.01")))
    assert "Partly closed <b>SOLUSDT</b> long" in reduced
    assert "liquidation (liquidated by the exchange)" in reduced
    assert "closed 10 @ 192.88" in reduced
    assert "still open: 16.3, SL 188.49 · TP 192.90" in reduced


@pytest.mark.parametrize("reason", list(CloseReason))
def test_every_close_reason_has_words(reason: CloseReason) -> None:
    assert f"({render.REASON_TEXT[reason]})" in render.closed_text(
        PositionClosed(trade("1", reason))
    )


def test_a_refused_press_is_explained() -> None:
    assert "max open positions" in render.decision_answer(
        Decision(Verdict.REJECTED, "SOLUSDT", "max_open_positions")
    )
    assert "expired" in render.decision_answer(Decision(Verdict.EXPIRED, "SOLUSDT"))
    assert "approved" in render.decision_answer(
        Decision(Verdict.ALREADY_DECIDED, "SOLUSDT", "approved")
    )
    assert "not for a pending trade" in render.decision_answer(Decision(Verdict.UNKNOWN))


def test_long_text_is_split_at_line_ends_under_the_limit() -> None:
    lines = [f"<b>line {i}</b> " + "x" * 60 for i in range(200)]
    parts = render.split_message("\n".join(lines))
    assert len(parts) > 1
    assert all(len(part) <= render.MESSAGE_LIMIT for part in parts)
    assert "\n".join(parts).split("\n") == lines


@given(st.lists(st.text(alphabet="ab <>&\n", max_size=9000), min_size=1, max_size=3))
def test_splitting_keeps_every_character_and_respects_the_limit(texts: list[str]) -> None:
    text = "\n".join(texts)
    parts = render.split_message(text, limit=100)
    assert all(len(part) <= 100 for part in parts)
    if text.strip():
        assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_trading_switches_read_well_for_any_count() -> None:
    assert "No positions are open." in render.trading_off_text(0)
    assert "1 open position keeps its stop-loss" in render.trading_off_text(1)
    assert "3 open positions keep their stop-loss" in render.trading_off_text(3)
    assert "Trading <b>OFF</b> already" in render.trading_off_text(0, already=True)
    assert "Trading <b>ON</b> already" in render.trading_on_text(False, already=True)


def test_close_all_asks_plainly_for_one_position() -> None:
    assert render.close_all_question(1) == "Close 1 open position at market?"
    assert render.close_all_question(2) == "Close all 2 open positions at market?"
    assert "TTL (time limit reached)" in render.closed_text(
        PositionClosed(trade("1", CloseReason.TTL))
    )


def test_the_start_message_says_what_the_engine_trades_with() -> None:
    strategy = Strategy(
        leverage=50,
        sl_pct=Decimal(20),
        tp_pct=Decimal(40),
        top_coins=frozenset({"SOLUSDT", "BTCUSDT"}),
        excluded_coins=frozenset({"XRPUSDT"}),
        warnings=("unknown key levrage is ignored; did you mean leverage?",),
        source="BYBIT_OPTIMAL_CONFIG.json",
    )
    text = render.engine_started_text(EngineStarted("paper", T0, 0, False, strategy))
    assert "Strategy: BYBIT_OPTIMAL_CONFIG.json · 50x · SL 20% / TP 40% of margin" in text
    assert "(a 0.4% / 0.8% price move)" in text
    assert "Margin 100.00 USDT a trade (cap 100.00 USDT) · whitelist 2 coins" in text
    assert "blacklist 1 coin" in text
    assert "did you mean leverage?" in text
    defaults = render.engine_started_text(EngineStarted("paper", T0, 0, False, Strategy()))
    assert "Strategy: built-in defaults · 10x" in defaults
    assert "any coin" in defaults


def test_a_refused_approval_does_not_wear_a_tick() -> None:
    text = render.resolved_text("SOLUSDT", None, "approved", "rejected:max_open_positions")
    assert "⛔ Approved, but not opened: max open positions." in text
    assert "✅" not in text


def test_times_are_shown_in_the_traders_zone_and_labelled() -> None:
    winter, summer = (
        datetime(2026, 1, 5, 22, 30, tzinfo=UTC),
        datetime(2026, 7, 5, 22, 30, tzinfo=UTC),
    )
    assert render.clock(winter, ZoneInfo("UTC")) == "22:30:00 UTC"
    assert render.clock(winter, ZoneInfo("Europe/Berlin")) == "23:30:00 CET"
    assert render.clock(summer, ZoneInfo("Europe/Berlin")) == "00:30:00 CEST"
    assert render.clock(winter, ZoneInfo("Asia/Dubai"), "%m-%d %H:%M") == "01-06 02:30 UTC+4"
    assert render.clock(winter, ZoneInfo("Asia/Kathmandu"), "%H:%M") == "04:15 UTC+5:45"
    assert render.clock(winter, ZoneInfo("America/St_Johns"), "%H:%M") == "19:00 NST"


def test_status_says_risk_keeps_the_utc_day_where_the_zone_differs() -> None:
    status = Status("paper", True, [], Decimal("-3.2"), Decimal("996.8"), LIMITS, False)
    assert "Today: -3.20 USDT" in render.status_text(status, ZoneInfo("UTC"))
    assert "Today (UTC day): -3.20 USDT" in render.status_text(status, ZoneInfo("Asia/Dubai"))


def test_the_end_of_risks_day_is_shown_in_the_traders_zone_too() -> None:
    at = datetime(2026, 1, 5, 22, 30, tzinfo=UTC)
    assert render.next_utc_day(at, ZoneInfo("UTC")) == "00:00 UTC"
    assert render.next_utc_day(at, ZoneInfo("Asia/Dubai")) == "04:00 UTC+4 (00:00 UTC)"
    assert render.next_utc_day(at, ZoneInfo("America/New_York")) == "19:00 EST (00:00 UTC)"
