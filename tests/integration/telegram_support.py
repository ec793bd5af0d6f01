"""The real aiogram client against the fake Telegram Bot API, for the fake's own tests: a
``Bot`` at the fake's address (the ``bot`` fixture), and inline keyboards.

Test modules import the ``bot`` fixture by name (``from tests.integration.telegram_support
import bot``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from tests.fakes.telegram import FakeTelegram

CHAT = 111


class LoopbackSession(AiohttpSession):
    """aiogram's session without the 250 ms it waits on close for TLS connections to wind down:
    there are none on loopback, and the wait would be most of each test's time."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(fake: FakeTelegram, token: str | None = None) -> Bot:
    session = LoopbackSession(api=TelegramAPIServer.from_base(fake.url))
    return Bot(token or fake.token, session=session)


@pytest.fixture
async def bot(fake_telegram: FakeTelegram) -> AsyncIterator[Bot]:
    bot = make_bot(fake_telegram)
    yield bot
    await bot.session.close()


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in buttons]]
    )
