"""/profit, /daily and /performance over the real aiogram client and the fake Bot API server,
on trades stored before the start and one the bot makes: every figure is worked out here
from the trades themselves, and days are calendar days in ``TIMEZONE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from storage.repositories import SqliteRepositories
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import AppFactory, Chat, open_from_chat
from tests.unit.storage_support import store_trades
from trader.clock import ManualClock
from trader.models import ClosedTrade, CloseReason, Side

CENT = Decimal("0.01")
FEES = (Decimal("0.10"), Decimal("0.12"))


@dataclass(frozen=True)
class Made:
    symbol: str
    net: str
    ago: timedelta  # before the clock's now
    held_minutes: int


# Four in the last 7 days, two before; no figure is a half cent (rounding is not the point).
HISTORY = [
    Made("SOLUSDT", "12.50", timedelta(hours=1), 30),
    Made("SOLUSDT", "-4.25", timedelta(days=1), 60),
    Made("BTCUSDT", "30.00", timedelta(days=2), 120),
    Made("ETHUSDT", "-8.10", timedelta(days=3), 90),
    Made("BTCUSDT", "1.26", timedelta(days=10), 60),
    Made("DOGEUSDT", "0.40", timedelta(days=20), 60),
]


def closed_trade(symbol: str, net: Decimal, closed: datetime, held: timedelta) -> ClosedTrade:
    entry_fee, exit_fee = FEES
    return ClosedTrade(
        signal_id=f"old-{symbol}-{closed.isoformat()}",
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


async def store(workdir: Path, trades: list[ClosedTrade]) -> None:
    """The trades in the database the bot opens (paper mode), before it starts."""
    repo = await SqliteRepositories.open(workdir / "data" / "paper.db")
    try:
        await store_trades(repo, trades)
    finally:
        await repo.close()


def history(now: datetime) -> list[ClosedTrade]:
    return [
        closed_trade(m.symbol, Decimal(m.net), now - m.ago, timedelta(minutes=m.held_minutes))
        for m in HISTORY
    ]


# --- the figures, worked out here ------------------------------------------------------------


def money(value: Decimal, *, sign: bool = True) -> str:
    cents = value.quantize(CENT, ROUND_HALF_EVEN)
    return f"{'+' if sign and cents > 0 else ''}{cents:,} USDT"


def trades_word(n: int) -> str:
    return f"{n} trade" if n == 1 else f"{n} trades"


def fees_of(trades: list[ClosedTrade]) -> Decimal:
    return sum((t.entry_fee + t.exit_fee for t in trades), Decimal(0))


def net_of(trades: list[ClosedTrade]) -> Decimal:
    return sum((t.net_pnl for t in trades), Decimal(0))


def profit_lines(trades: list[ClosedTrade]) -> list[str]:
    """/profit's figures after its header (holding times here are whole minutes)."""
    wins = [t.net_pnl for t in trades if t.net_pnl > 0]
    losses = [t.net_pnl for t in trades if t.net_pnl <= 0]
    factor = (sum(wins, Decimal(0)) / -sum(losses, Decimal(0))).quantize(CENT, ROUND_HALF_EVEN)
    minutes = sum((t.closed_at - t.opened_at for t in trades), timedelta(0)) / len(trades)
    hours, rest = divmod(int(minutes.total_seconds()) // 60, 60)
    rate = (Decimal(100) * len(wins) / len(trades)).quantize(Decimal("0.1"))
    return [
        f"Closed trades: {len(trades)} · won {len(wins)} · win rate {rate}%",
        f"Net PnL: {money(net_of(trades))} · fees {money(fees_of(trades), sign=False)}",
        f"Profit factor: {factor}",
        f"Best trade: {money(max(wins))} · worst: {money(min(losses))}",
        f"Average holding time: {hours} h {rest:02d} min",
    ]


def day_line(day: date, trades: list[ClosedTrade]) -> str:
    return (
        f"{day.strftime('%a %m-%d')}: {money(net_of(trades))} · {trades_word(len(trades))} · "
        f"fees {money(fees_of(trades), sign=False)}"
    )


# --- the commands ----------------------------------------------------------------------------


async def test_profit_daily_and_performance_are_the_figures_of_the_stored_trades(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    now = clock.now()
    trades = history(now)
    await store(workdir, trades)
    app = await apps()
    chat = Chat(fake_telegram)

    profit = await chat.ask("/profit", "Profit")
    lines = profit.plain.splitlines()
    assert lines[0] == "Profit · all time"
    assert lines[1:6] == profit_lines(trades)

    today = now.date()  # TIMEZONE is UTC here
    week = [t for t in trades if t.closed_at.date() >= today - timedelta(days=6)]
    assert len(week) == 4
    profit = await chat.ask("/profit 7", "Profit")
    lines = profit.plain.splitlines()
    assert lines[0] == f"Profit · last 7 days (since {today - timedelta(days=6)}, UTC)"
    assert lines[1:6] == profit_lines(week)

    daily = await chat.ask("/daily", "Daily PnL")
    lines = daily.plain.splitlines()
    assert lines[0] == "Daily PnL · last 7 days (UTC), newest first"
    days = [today - timedelta(days=n) for n in range(7)]
    assert lines[1:8] == [day_line(d, [t for t in week if t.closed_at.date() == d]) for d in days]
    assert any(" 0.00 USDT · 0 trades · " in line for line in lines[1:8])  # a gap shows
    assert lines[8] == (
        f"Total: {money(net_of(week))} · 4 trades · fees {money(fees_of(week), sign=False)}"
    )

    performance = await chat.ask("/performance", "Performance by symbol")
    by_symbol = {
        s: [t for t in trades if t.symbol == s]
        for s in ("SOLUSDT", "BTCUSDT", "ETHUSDT", "DOGEUSDT")
    }
    ranked = sorted(by_symbol, key=lambda s: -net_of(by_symbol[s]))
    assert ranked == ["BTCUSDT", "SOLUSDT", "DOGEUSDT", "ETHUSDT"]
    expected = []
    for symbol in ranked:
        mine = by_symbol[symbol]
        rate = Decimal(100) * sum(t.net_pnl > 0 for t in mine) / len(mine)
        expected.append(
            f"{symbol}: {money(net_of(mine))} · {trades_word(len(mine))} · win rate {rate:.1f}%"
        )
    assert performance.plain.splitlines()[1:] == expected

    # A trade the bot makes now is counted by the next command.
    await open_from_chat(chat, workdir, clock)
    await chat.ask("/close SOLUSDT", "Closed SOLUSDT")
    (made,) = await app.engine.recent_trades(1)
    profit = await chat.ask("/profit", "Profit")
    assert profit.plain.splitlines()[1].startswith("Closed trades: 7 · ")
    assert f"Net PnL: {money(net_of([*trades, made]))} · " in profit.plain


async def test_bad_arguments_get_the_usage_and_nothing_else(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    await apps()
    chat = Chat(fake_telegram)
    for bad in ("/profit 0", "/profit x", "/profit 7 8", "/profit 3651", "/profit -1"):
        await chat.ask(bad, "Usage: /profit")
    for bad in ("/daily 0", "/daily 91", "/daily week"):
        await chat.ask(bad, "Usage: /daily [N]")
    await chat.ask("/performance SOLUSDT", "Usage: /performance")
    # No trades yet: said plainly, and today's empty days are still listed.
    await chat.ask("/PROFIT", "No trades closed in this time")
    await chat.ask("/performance", "No closed trades yet")
    daily = await chat.ask("/daily 2", "Daily PnL")
    assert daily.plain.splitlines()[1].endswith(": 0.00 USDT · 0 trades · fees 0.00 USDT")


async def test_daily_in_dubai_puts_a_trade_at_22_30_utc_on_the_next_local_day(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    day = clock.now().date() - timedelta(days=3)
    late = closed_trade(  # 02:30 the next day in Dubai (UTC+4, no daylight saving)
        "SOLUSDT",
        Decimal("5.00"),
        datetime.combine(day, datetime.min.time(), UTC).replace(hour=22, minute=30),
        timedelta(minutes=20),
    )
    evening = closed_trade(  # 23:30 the same day in Dubai
        "BTCUSDT", Decimal("-2.00"), late.closed_at - timedelta(hours=3), timedelta(minutes=20)
    )
    await store(workdir, [late, evening])
    await apps(timezone="Asia/Dubai")
    chat = Chat(fake_telegram)

    daily = await chat.ask("/daily", "Daily PnL")
    lines = daily.plain.splitlines()
    assert lines[0] == "Daily PnL · last 7 days (Asia/Dubai), newest first"
    dubai_today = (clock.now() + timedelta(hours=4)).date()
    assert lines[1].startswith(dubai_today.strftime("%a %m-%d"))
    assert day_line(day + timedelta(days=1), [late]) in lines
    assert day_line(day, [evening]) in lines
    assert sum(" 0 trades " in line for line in lines) == 5
