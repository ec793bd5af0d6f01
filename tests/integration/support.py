"""Helpers shared by the integration tests: the signal log, the strategy, settings pointing
at the loopback fakes, and a collector of engine events to wait on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from bot.app import App
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram, SentMessage
from trader.clock import ManualClock
from trader.events import Event
from trader.settings import Settings, load_settings

RATE = Decimal("0.00055")
HEADER = (
    "timestamp,symbol,interval,verdict,confidence,score,min_score,max_score,entry_price,vwap,"
    "oi,oi_change,volume_spike,liq_long,liq_short,components,ttl_minutes,target_min,target_max,"
    "signal_id\n"
)
STRATEGY = {
    "parameters": {"leverage": 50, "sl": 40, "tp": 75},
    "top_coins": [],
    "excluded_coins": ["YFIUSDT"],
    "fee_rate": 0.00055,
    "paper_balance_usdt": 1000,
    # append_signal writes a placeholder entry price (100): not a price to hold the market to.
    "max_entry_deviation_pct": 1_000_000_000,
}


class Events:
    """Collects engine events; tests wait for the next one of a kind with a deadline."""

    def __init__(self) -> None:
        self.seen: list[Event] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: Event) -> None:
        async with self._changed:
            self.seen.append(event)
            self._changed.notify_all()

    async def wait(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(condition)

    async def next(self, kind: type, *, after: int = 0, timeout: float = 5.0) -> Event:  # noqa: ASYNC109
        def found() -> Event | None:
            return next((e for e in self.seen[after:] if isinstance(e, kind)), None)

        await self.wait(lambda: found() is not None, timeout)
        event = found()
        assert event is not None
        return event


def fmt(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def append_signal(
    path: Path,
    when: datetime,
    symbol: str,
    verdict: str,
    *,
    confidence: str = "0.8",
    ttl: int = 15,
    signal_id: str = "",
) -> None:
    with path.open("a") as handle:
        handle.write(
            f"{fmt(when)},{symbol},,{verdict},{confidence},,,,100,,,,,,,,{ttl},,,{signal_id}\n"
        )


def make_workdir(path: Path) -> Path:
    """A directory with a strategy file and an empty signal log."""
    (path / "strategy.json").write_text(json.dumps(STRATEGY))
    (path / "signals_log.csv").write_text(HEADER)
    return path


def edit_strategy(workdir: Path, **keys: object) -> None:
    """Set ``keys`` in the strategy file of ``workdir`` (read at the next start)."""
    path = workdir / "strategy.json"
    strategy = json.loads(path.read_text())
    strategy.update(keys)
    path.write_text(json.dumps(strategy))


async def wait_outcome(app: App, signal_id: str, timeout: float = 5.0) -> str:  # noqa: ASYNC109
    """The stored outcome of ``signal_id`` once it has one (a deadline bounds the wait)."""
    async with asyncio.timeout(timeout):
        while True:
            stored = await app.engine.repo.get_signal(signal_id)
            if stored is not None and stored.outcome:
                return stored.outcome
            await asyncio.sleep(0.01)


def settings_for(workdir: Path, fake: FakeBybit, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "telegram_bot_token": "1:test",
        "telegram_allowed_chat_ids": "1",
        **overrides,
    }
    return load_settings(
        env_file=None,
        bybit_rest_url=fake.url,
        bybit_ws_public_url=fake.ws_public_url,
        bybit_ws_private_url=fake.ws_private_url,
        signals_path=workdir / "signals_log.csv",
        strategy_path=workdir / "strategy.json",
        data_dir=workdir / "data",
        **values,
    )


AppFactory = Callable[..., Awaitable[App]]

CHAT = 111  # the trader's chat, allowed
LIVE_KEY, LIVE_SECRET = "live-key-123", "live-secret-456"  # a trade-only key of the fake Bybit
STRANGER = 999  # a chat that is not in TELEGRAM_ALLOWED_CHAT_IDS


class Chat:
    """The trader's side of a chat with the bot, on the fake Bot API server."""

    def __init__(self, fake: FakeTelegram, chat_id: int = CHAT) -> None:
        self.fake = fake
        self.id = chat_id

    def mark(self) -> int:
        """How many bot messages the chat holds now: ``expect(after=...)`` looks past them."""
        return len(self.fake.sent(self.id))

    def say(self, text: str) -> int:
        mark = self.mark()
        self.fake.push_message(self.id, text)
        return mark

    async def expect(self, contains: str, *, after: int = 0, timeout: float = 5.0) -> SentMessage:  # noqa: ASYNC109
        """The first bot message after ``after`` whose visible text contains ``contains``."""

        def found() -> SentMessage | None:
            return next(
                (m for m in self.fake.sent(self.id)[after:] if contains in _visible(m)), None
            )

        try:
            await self.fake.wait_until(lambda: found() is not None, timeout)
        except (AssertionError, TimeoutError):
            seen = [_visible(m) for m in self.fake.sent(self.id)[after:]]
            raise AssertionError(f"no message containing {contains!r}; got {seen}") from None
        message = found()
        assert message is not None
        return message

    async def ask(self, text: str, contains: str) -> SentMessage:
        return await self.expect(contains, after=self.say(text))

    def press(self, message: SentMessage, label_part: str) -> str:
        """Press the inline button whose label contains ``label_part``; the query id."""
        return self.fake.push_callback(
            self.id, message.message_id, button_data(message, label_part)
        )


async def open_from_chat(
    chat: Chat, workdir: Path, clock: ManualClock, symbol: str = "SOLUSDT"
) -> SentMessage:
    """Trading switched on from the chat, then a BUY signal for ``symbol`` appended to the log:
    the bot's note of the position it opened."""
    await chat.ask("/start_trading", "Trading ON")
    append_signal(workdir / "signals_log.csv", clock.now(), symbol, "BUY")
    return await chat.expect(f"Opened {symbol} long")


def button_data(message: SentMessage, label_part: str) -> str:
    assert message.reply_markup is not None, "the message has no buttons"
    for row in message.reply_markup["inline_keyboard"]:
        for button in row:
            if label_part in button["text"]:
                return str(button["callback_data"])
    raise AssertionError(f"no button {label_part!r} in {message.reply_markup}")


def _visible(message: SentMessage) -> str:
    return message.plain or message.caption or ""
