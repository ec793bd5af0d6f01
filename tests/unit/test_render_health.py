"""The /health reply: ages as a glance needs them, plurals right, each stream's state, the
clock's skew told as behind or ahead; and outcomes as metric labels."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot import render
from bot.health import HealthReport
from bot.metrics import outcome_label
from bot.render.health import age, clock_line, duration, stream_line
from trader.exchange.base import StreamHealth


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "0 s"),
        (59.9, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3600 + 5 * 60 + 30, "1 h 5 min"),
        (47 * 3600 + 59 * 60, "47 h 59 min"),
        (48 * 3600, "2 days"),
        (30 * 24 * 3600, "30 days"),
        (-3, "0 s"),
    ],
)
def test_durations_are_as_precise_as_a_glance_needs(seconds: float, said: str) -> None:
    assert duration(seconds) == said


def test_an_age_in_the_future_points_at_the_generators_clock() -> None:
    assert age(timedelta(seconds=12)) == "12 s ago"
    assert "generator's clock" in age(timedelta(seconds=-5))


def test_stream_lines_say_the_state_since_when_and_reconnects() -> None:
    assert stream_line("public", StreamHealth("connected", 7300, 0)) == (
        "Public stream: connected for 2 h 1 min"
    )
    assert stream_line("private", StreamHealth("reconnecting", 12, 1)) == (
        "Private stream: ⚠️ reconnecting since 12 s ago (1 reconnect)"
    )
    assert stream_line("public", StreamHealth("connected", 5, 3)).endswith("(3 reconnects)")
    assert "idle" in stream_line("public", StreamHealth("idle", 5, 0))


def test_the_clock_line_says_whose_clock_is_behind() -> None:
    assert clock_line(None) == "Clock: not measured yet"
    assert clock_line(0) == "Clock: in step with Bybit"
    assert clock_line(120) == "Clock: 120 ms behind Bybit"
    assert clock_line(-80) == "Clock: 80 ms ahead of Bybit"
    assert clock_line(2500) == "Clock: ⚠️ 2,500 ms behind Bybit"


def _report(**changes: object) -> HealthReport:
    values: dict[str, object] = {
        "healthy": True,
        "running": True,
        "trading": True,
        "mode": "live",
        "streams": {"public": StreamHealth("connected", 90, 0)},
        "last_signal_age": timedelta(minutes=3),
        "clock_skew_ms": 40,
        "outbox_backlog": 1,
        "uptime": timedelta(hours=5, minutes=2),
        "version": "0.1.0",
        **changes,
    }
    return HealthReport(**values)  # type: ignore[arg-type]


def test_health_text_is_compact_and_names_what_is_wrong() -> None:
    text = render.health_text(_report())
    assert text.splitlines() == [
        "🩺 <b>Health: OK</b>",
        "Engine: running · live mode · trading ON",
        "Public stream: connected for 1 min",
        "Last signal: 3 min ago",
        "Clock: 40 ms behind Bybit",
        "Outbox: 1 message waiting",
        "Up 5 h 2 min · v0.1.0",
    ]
    unwell = render.health_text(
        _report(
            healthy=False,
            running=False,
            problems=("engine not running", "public stream down for 40 s"),
            outbox_backlog=0,
            last_signal_age=None,
        )
    )
    assert unwell.splitlines()[0] == (
        "🩺 <b>Health: ⚠️ engine not running; public stream down for 40 s</b>"
    )
    assert "Engine: ⚠️ not running · live mode · trading ON" in unwell
    assert "Last signal: none yet" in unwell
    assert "Outbox: empty" in unwell


@pytest.mark.parametrize(
    ("outcome", "label"),
    [
        ("opened", "opened"),
        ("filtered:stale", "filtered:stale"),
        ("rejected:max_positions", "rejected:max_positions"),
        ("invalid:bad_ttl", "invalid:bad_ttl"),
        ("failed:Bybit said 110007 insufficient balance", "failed"),
        ("declined", "declined"),
    ],
)
def test_outcomes_become_labels_of_bounded_variety(outcome: str, label: str) -> None:
    assert outcome_label(outcome) == label
