"""Reports over a long history, through the real bot against the fake Telegram: the figures
are ``trade_stats`` over every stored trade, kept up to date as trades close, with a bounded
chart; and ``trades_log.csv`` is left alone at start when it matches the database, rebuilt
when it does not."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bot.render.values import count, percent, pnl, usdt
from storage.export import append_trade
from storage.repositories import SqliteRepositories
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram.validation import render as visible
from tests.integration.support import CHAT, AppFactory, Chat, settings_for
from tests.unit.storage_support import store_trades
from trader.equity_curve import CURVE_POINTS
from trader.models import ClosedTrade, CloseReason, Side
from trader.pnl import Stats, trade_stats
from trader.runtime import build_runtime

HISTORY = 3000


def history(count_: int, *, seed: int = 7) -> list[ClosedTrade]:
    """Closed trades over the last 30 days, oldest first, PnL and fees to 8 decimals."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=30)
    trades = []
    for i in range(count_):
        closed = start + timedelta(days=30) * i / count_
        net = Decimal(rng.randint(-900_000_000, 1_000_000_000)).scaleb(-8)
        fee = Decimal(rng.randint(1_000_000, 20_000_000)).scaleb(-8)
        trades.append(
            ClosedTrade(
                signal_id=f"hist-{i}",
                symbol=("SOLUSDT", "BTCUSDT", "ETHUSDT")[i % 3],
                side=Side.BUY,
                qty=Decimal("1.5"),
                entry_price=Decimal("150.01"),
                exit_price=Decimal("151.2"),
                leverage=10,
                margin=Decimal("22.501"),
                entry_fee=fee,
                exit_fee=fee,
                gross_pnl=net + 2 * fee,
                net_pnl=net,
                reason=CloseReason.TTL,
                opened_at=closed - timedelta(minutes=15),
                closed_at=closed,
            )
        )
    return trades


async def store(db_path: Path, trades: Sequence[ClosedTrade]) -> None:
    repo = await SqliteRepositories.open(db_path)
    try:
        await store_trades(repo, trades)
    finally:
        await repo.close()


def stats_line(stats: Stats) -> str:
    """The report's stats line as the trader sees it."""
    html = (
        f"Closed trades: {stats.trades} · win rate {percent(stats.win_rate)} · "
        f"net {pnl(stats.net_pnl)} · fees {usdt(stats.fees)}"
    )
    return visible(html, "HTML", caption=False)[0]


async def test_report_figures_are_the_stats_of_every_stored_trade(
    workdir: Path, apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    trades = history(HISTORY)
    await store(workdir / "data" / "paper.db", trades)
    app = await apps()
    chat = Chat(fake_telegram, CHAT)
    start = app.runtime.strategy.paper_balance_usdt

    first = trade_stats(trades, start)
    mark = chat.say("/report")
    report = await chat.expect("Report", after=mark)
    assert stats_line(first) in report.plain.splitlines()
    photo = await chat.expect("Equity after", after=mark)
    assert photo.kind == "photo"
    caption = f"Equity after {count(HISTORY, 'closed trade')}: {pnl(first.net_pnl)} net of fees"
    assert photo.plain == visible(caption, "HTML", caption=True)[0]
    assert len((await app.engine.performance()).curve) <= CURVE_POINTS

    # A trade closed since is counted; so is one booked late that closed long before.
    db = workdir / "data" / "paper.db"
    await store(db, [replace(trades[-1], signal_id="recent", closed_at=datetime.now(UTC))])
    every = await app.runtime.repo.all_trades()
    report = await chat.ask("/report", "Report")
    assert stats_line(trade_stats(every, start)) in report.plain.splitlines()
    await store(db, [replace(trades[0], signal_id="late", net_pnl=Decimal("-5000.5"))])
    every = await app.runtime.repo.all_trades()
    assert len(every) == HISTORY + 2
    report = await chat.ask("/report", "Report")
    assert stats_line(trade_stats(every, start)) in report.plain.splitlines()
    assert await app.engine.stats() == trade_stats(every, start)


async def test_a_matching_trades_log_is_left_alone_at_start(
    workdir: Path, fake_bybit: FakeBybit
) -> None:
    trades = history(50)
    await store(workdir / "data" / "paper.db", trades)
    mirror = workdir / "data" / "trades_log.csv"
    for trade in trades:
        append_trade(mirror, trade)
    before = mirror.stat()

    runtime = await build_runtime(settings_for(workdir, fake_bybit))
    await runtime.stop()

    after = mirror.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )


async def test_a_trades_log_that_lost_a_row_is_rebuilt_at_start(
    workdir: Path, fake_bybit: FakeBybit
) -> None:
    trades = history(50)
    await store(workdir / "data" / "paper.db", trades)
    mirror, expected = workdir / "data" / "trades_log.csv", workdir / "expected.csv"
    for trade in trades:
        append_trade(expected, trade)
    for trade in trades[:-1]:  # a crash between the last trade's commit and its row
        append_trade(mirror, trade)

    runtime = await build_runtime(settings_for(workdir, fake_bybit))
    await runtime.stop()

    assert mirror.read_bytes() == expected.read_bytes()
