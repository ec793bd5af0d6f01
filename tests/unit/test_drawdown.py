"""The drawdown stop's arithmetic and its close-out: pure, and against a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from storage.repositories import SqliteRepositories
from tests.unit.storage_support import repo
from tests.unit.test_render import position
from trader.book import Book
from trader.clock import ManualClock
from trader.drawdown import FLATTEN_KEY, DrawdownGuard, current_drawdown
from trader.events import EventBus
from trader.exchange.base import Exchange
from trader.models import CloseReason
from trader.parts import Parts
from trader.read_models import ReadModels
from trader.strategy import Strategy
from trader.tasks import Tasks

__all__ = ["repo"]  # fixtures

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_the_drawdown_is_measured_from_the_highest_equity_so_far() -> None:
    curve = [(at(1), Decimal(1100)), (at(2), Decimal(990)), (at(3), Decimal(1045))]
    pct, peak, equity = current_drawdown(Decimal(1000), curve)
    assert (peak, equity) == (Decimal(1100), Decimal(1045))
    assert pct == Decimal(5)
    assert current_drawdown(Decimal(1000), [])[0] == 0


def test_after_a_stop_or_a_resume_the_peak_counts_from_the_equity_then() -> None:
    curve = [(at(1), Decimal(1100)), (at(2), Decimal(990)), (at(3), Decimal(980))]
    pct, peak, _ = current_drawdown(Decimal(1000), curve, since=at(2))
    assert peak == Decimal(990)  # not 1100: that fall stopped trading once already
    assert pct < Decimal("1.1")


async def test_a_pending_close_out_goes_on_after_a_restart_and_ends_when_flat(
    repo: SqliteRepositories, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    strategy = Strategy(max_drawdown_pct=Decimal(10))
    book = Book(repo=repo, clock=clock, strategy=strategy)
    paper: Any = SimpleNamespace(mode="paper")
    parts = Parts(book, repo, cast(Exchange, paper), clock, EventBus(), strategy, Tasks())
    closed: list[tuple[str, CloseReason]] = []

    async def close(symbol: str, reason: CloseReason) -> None:
        closed.append((symbol, reason))
        book.positions.pop(symbol, None)

    async def stop_trading() -> None:
        book.trading_enabled = False

    none: Any = None
    models = ReadModels(parts, exits=none)
    await repo.set_setting(FLATTEN_KEY, "1")  # a stop whose close-out a restart cut short
    guard = DrawdownGuard(parts, read_models=models, stop_trading=stop_trading, close=close)
    await guard.load()
    book.positions = {"SOLUSDT": position("SOLUSDT"), "BTCUSDT": position("BTCUSDT")}
    book.retry_close_at["BTCUSDT"] = T0 + timedelta(seconds=30)  # its close failed just now

    await guard.flatten()
    await parts.tasks.wait_idle()
    assert closed == [("SOLUSDT", CloseReason.DRAWDOWN)]  # BTC waits for its retry time
    clock.advance(timedelta(seconds=31))
    await guard.flatten()
    await parts.tasks.wait_idle()
    assert closed[-1] == ("BTCUSDT", CloseReason.DRAWDOWN)
    await guard.flatten()  # flat now: the close-out is over, and stored as over
    assert await repo.get_setting(FLATTEN_KEY) == "0"
