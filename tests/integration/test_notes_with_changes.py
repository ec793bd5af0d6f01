"""The engine books an entry, a close and the daily-loss announcement together with their chat
notes: a crash right after the booking (kill -9, played in-process by a repository that dies
once its transaction has committed) can no longer lose the note.

The engine trades on the paper venue over the fake Bybit, and the bot's real ``Notifier``
renders the notes; nothing is delivered (the outbox is read back from the SQLite file).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot

from bot.notifier import Notifier
from bot.render import plain
from storage.repositories import SqliteRepositories
from tests.fakes.bybit import FakeBybit
from trader.clock import ManualClock
from trader.engine import Engine
from trader.events import (
    DailyLossLimitReached,
    Event,
    PositionClosed,
    PositionOpened,
)
from trader.exchange.market import BybitMarketData
from trader.exchange.paper import PaperExchange
from trader.models import Signal
from trader.strategy import Strategy

TOKEN = "123456789:AAEnotesWithChangesTestToken0000000"
CHATS = [11, 22]


class Crash(BaseException):
    """The process dies here: nothing after this point runs, nothing is cleaned up."""


class CrashingRepositories:
    """The real repositories (a test double of the storage port), dying right after the
    booking named in ``crash_after`` has committed."""

    def __init__(self, inner: SqliteRepositories) -> None:
        self._inner = inner
        self.crash_after = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _booked(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = await getattr(self._inner, name)(*args, **kwargs)
        if self.crash_after == name:
            self.crash_after = ""
            raise Crash(name)
        return result

    async def record_entry(self, *args: Any, **kwargs: Any) -> Any:
        return await self._booked("record_entry", *args, **kwargs)

    async def close_position(self, *args: Any, **kwargs: Any) -> Any:
        return await self._booked("close_position", *args, **kwargs)

    async def set_setting(self, *args: Any, **kwargs: Any) -> Any:
        return await self._booked("set_setting", *args, **kwargs)


@dataclass
class Rig:
    engine: Engine
    repo: CrashingRepositories
    path: Path
    events: list[Event]

    def notes(self) -> list[tuple[int, str]]:
        """(chat, first line of the text) of every stored note, in outbox order, as a
        fresh connection (the process after the crash) reads them."""
        with sqlite3.connect(self.path) as conn:
            rows = conn.execute("SELECT chat_id, payload FROM outbox ORDER BY id").fetchall()
        return [(chat, plain(json.loads(payload)["text"]).split("\n")[0]) for chat, payload in rows]

    def count(self, table: str) -> int:
        with sqlite3.connect(self.path) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    async def open_sol(self) -> None:
        now = self.engine.clock.now()
        signal = Signal("s1", now, "SOLUSDT", "BUY", Decimal("0.9"), ttl_minutes=15)
        await self.engine.handle_record(signal)
        await self.engine.wait_idle()


@contextlib.asynccontextmanager
async def build(
    tmp_path: Path, fake_bybit: FakeBybit, *, notifier: bool = True, **strategy: Any
) -> AsyncIterator[Rig]:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    inner = await SqliteRepositories.open(tmp_path / "paper.db")
    repo = CrashingRepositories(inner)
    market = BybitMarketData(fake_bybit.url, fake_bybit.ws_public_url)
    exchange = PaperExchange(market, fee_rate=Decimal("0.00055"), wallet=Decimal(1000), clock=clock)
    settings = Strategy(leverage=50, sl_pct=Decimal(40), tp_pct=Decimal(75), **strategy)
    engine = Engine(strategy=settings, exchange=exchange, repo=repo, clock=clock)  # type: ignore[arg-type]
    bot = Bot(TOKEN)
    if notifier:
        Notifier(bot, inner, CHATS).attach(engine.bus)
    events: list[Event] = []

    async def record(event: Event) -> None:
        events.append(event)

    engine.bus.subscribe(record)
    await engine.start()
    await engine.start_trading()
    try:
        yield Rig(engine, repo, inner.database.path, events)
    finally:
        await engine.stop()
        await inner.close()
        await bot.session.close()


@pytest.fixture
async def rig(tmp_path: Path, fake_bybit: FakeBybit) -> AsyncIterator[Rig]:
    async with build(tmp_path, fake_bybit) as built:
        yield built


async def test_a_crash_right_after_the_entry_is_booked_keeps_its_note(rig: Rig) -> None:
    rig.repo.crash_after = "record_entry"
    await rig.open_sol()  # the entry task dies with the process, before any event goes out
    assert not [e for e in rig.events if isinstance(e, PositionOpened)]
    assert rig.count("positions") == 1
    assert [note for note in rig.notes() if "Opened" in note[1]] == [
        (11, "🟢 Opened SOLUSDT long"),
        (22, "🟢 Opened SOLUSDT long"),
    ]


async def test_a_crash_right_after_the_close_is_booked_keeps_its_note(rig: Rig) -> None:
    await rig.open_sol()
    rig.repo.crash_after = "close_position"
    with pytest.raises(Crash):
        await rig.engine.close("SOLUSDT")
    assert not [e for e in rig.events if isinstance(e, PositionClosed)]
    assert rig.count("trades") == 1
    closed = [note for note in rig.notes() if "Closed" in note[1]]
    assert [chat for chat, _ in closed] == CHATS
    assert "Closed SOLUSDT long · manual" in closed[0][1]


async def test_each_note_is_stored_once_and_its_event_goes_out_marked(rig: Rig) -> None:
    await rig.open_sol()
    await rig.engine.close("SOLUSDT")
    await rig.engine.wait_idle()
    texts = [text.split(" ")[1] for chat, text in rig.notes() if chat == 11]
    assert texts.count("Opened") == 1  # not once by the engine and again by the notifier
    assert texts.count("Closed") == 1
    assert texts.index("Opened") < texts.index("Closed")
    booked = [e for e in rig.events if isinstance(e, PositionOpened | PositionClosed)]
    assert [e.noted for e in booked] == [True, True]


async def test_a_crash_right_after_the_daily_loss_is_marked_announced_keeps_its_note(
    tmp_path: Path, fake_bybit: FakeBybit
) -> None:
    # Fees alone make a flat round trip lose more than 1 USDT.
    async with build(tmp_path, fake_bybit, max_daily_loss_usdt=Decimal(1)) as rig:
        await rig.open_sol()
        rig.repo.crash_after = "set_setting"
        with pytest.raises(Crash):
            await rig.engine.close("SOLUSDT")
        assert not [e for e in rig.events if isinstance(e, DailyLossLimitReached)]
        assert await rig.repo.get_setting("daily_loss_announced") is not None
        losses = [text for chat, text in rig.notes() if "Daily loss" in text]
        assert len(losses) == len(CHATS)


async def test_without_a_notes_renderer_the_engine_books_as_before(
    tmp_path: Path, fake_bybit: FakeBybit
) -> None:
    async with build(tmp_path, fake_bybit, notifier=False) as rig:
        await rig.open_sol()
        await rig.engine.close("SOLUSDT")
        await rig.engine.wait_idle()
        assert rig.count("trades") == 1
        assert rig.notes() == []
        booked = [e for e in rig.events if isinstance(e, PositionOpened | PositionClosed)]
        assert [type(e).__name__ for e in booked] == ["PositionOpened", "PositionClosed"]
        assert not any(e.noted for e in booked)
