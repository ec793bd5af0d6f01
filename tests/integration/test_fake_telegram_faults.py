"""The fake Telegram Bot API's injected faults against the real aiogram client: 429 with
retry_after, and 5xx for any method until cleared.
"""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter, TelegramServerError

from tests.fakes.telegram import FakeTelegram
from tests.integration.telegram_support import CHAT, bot

__all__ = ["bot"]  # fixtures


async def test_429_raises_retry_after_then_recovers(fake_telegram: FakeTelegram, bot: Bot) -> None:
    fake_telegram.fail("sendMessage", 429, times=1, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(CHAT, "first")
    assert caught.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in str(caught.value)
    sent = await bot.send_message(CHAT, "second")
    assert sent.message_id == 1  # the failed call created no message
    calls = fake_telegram.calls("sendMessage")
    assert [(c.ok, c.status) for c in calls] == [(False, 429), (True, 200)]
    assert calls[0].params == {"chat_id": "111", "text": "first"}
    assert [m.plain for m in fake_telegram.sent()] == ["second"]


async def test_502_for_any_method_until_cleared(fake_telegram: FakeTelegram, bot: Bot) -> None:
    fake_telegram.fail("*", 502)
    for _ in range(2):
        with pytest.raises(TelegramServerError, match="Bad Gateway"):
            await bot.send_message(CHAT, "hello")
    assert await bot.get_updates() == []  # "*" spares getUpdates
    fake_telegram.fail("getUpdates", 500, times=1, description="Internal Server Error: boom")
    with pytest.raises(TelegramServerError, match="boom"):
        await bot.get_updates()
    fake_telegram.clear_failures()
    await bot.send_message(CHAT, "hello")
    assert len(fake_telegram.sent()) == 1
