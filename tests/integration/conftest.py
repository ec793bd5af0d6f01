"""Fixtures of the integration tests: loopback fakes of the venues, one per test.

Each fake is started in the test's own event loop and stopped after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.notifier import Backoff
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import (
    CHAT,
    LIVE_KEY,
    LIVE_SECRET,
    AppFactory,
    make_workdir,
    settings_for,
)
from trader.clock import ManualClock


@pytest.fixture
async def fake_bybit() -> AsyncIterator[FakeBybit]:
    """A started fake Bybit with the default linear instruments and their tickers."""
    async with FakeBybit() as fake:
        yield fake


@pytest.fixture
def live_bybit(fake_bybit: FakeBybit) -> FakeBybit:
    """The fake Bybit with a trade-only key (``LIVE_KEY``) and 10,000 USDT in the wallet."""
    fake_bybit.add_api_key(LIVE_KEY, LIVE_SECRET)
    fake_bybit.set_wallet("10000")
    return fake_bybit


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    """A started fake Telegram Bot API for the default token (``FakeTelegram.token``)."""
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A strategy file and an empty signal log; the data directory goes under it."""
    return make_workdir(tmp_path)


@pytest.fixture
def clock() -> ManualClock:
    # Whole seconds, as the signal log writes them.
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def apps(
    workdir: Path, fake_bybit: FakeBybit, fake_telegram: FakeTelegram, clock: ManualClock
) -> AsyncIterator[AppFactory]:
    """Starts the whole process (``build_app``, as ``python -m bot`` does) on one data
    directory, against both fakes; every app still running is stopped at the end."""
    running: list[App] = []

    async def start(**overrides: object) -> App:
        values: dict[str, object] = {
            "telegram_bot_token": fake_telegram.token,
            "telegram_allowed_chat_ids": str(CHAT),
            "telegram_api_url": fake_telegram.url,
            "report_interval_minutes": 0,
            **overrides,
        }
        settings = settings_for(workdir, fake_bybit, **values)
        app = await build_app(
            settings, clock=clock, backoff=Backoff(first=0.05, cap=0.5), polling_timeout=1
        )
        running.append(app)
        await app.start()
        return app

    yield start
    for app in running:
        await app.stop()
