"""The fake Telegram Bot API against the real aiogram client: getUpdates (offsets, long
polling, a second poller, an abandoned poll, stopping) and aiogram's own polling loop.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramConflictError
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from tests.fakes.telegram import FakeTelegram
from tests.integration.telegram_support import CHAT, bot, keyboard, make_bot

__all__ = ["bot"]  # fixtures


async def test_get_updates_offset_confirms_and_limit(fake_telegram: FakeTelegram, bot: Bot) -> None:
    first = fake_telegram.push_message(CHAT, "/status")
    second = fake_telegram.push_message(CHAT, "hello", user_id=222)
    assert second == first + 1

    updates = await bot.get_updates(limit=1)
    assert [u.update_id for u in updates] == [first]
    message = updates[0].message
    assert message is not None
    assert message.text == "/status"
    assert message.from_user is not None
    assert message.from_user.id == CHAT
    assert message.entities is not None
    assert (message.entities[0].type, message.entities[0].length) == ("bot_command", 7)

    # Not confirmed yet: both come again. Confirming the first leaves the second.
    assert [u.update_id for u in await bot.get_updates()] == [first, second]
    assert [u.update_id for u in await bot.get_updates(offset=second)] == [second]
    # The first is gone for good, even without an offset.
    assert [u.update_id for u in await bot.get_updates()] == [second]
    assert await bot.get_updates(offset=second + 1) == []
    assert fake_telegram.pending_updates() == []
    third = fake_telegram.push_message(CHAT, "again")
    assert [u.update_id for u in await bot.get_updates()] == [third]


async def test_get_updates_timeout_returns_empty_list(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 2.0


async def test_get_updates_wakes_early_on_push(fake_telegram: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    await fake_telegram.wait_until(lambda: fake_telegram.polling == 1, timeout=1)
    started = time.monotonic()
    update_id = fake_telegram.push_message(CHAT, "/ping")
    updates = await asyncio.wait_for(poll, timeout=1)
    assert [u.update_id for u in updates] == [update_id]
    assert time.monotonic() - started < 0.8


async def test_a_second_poller_ends_the_first_with_conflict(
    fake_telegram: FakeTelegram, bot: Bot
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=20))
    await fake_telegram.wait_until(lambda: fake_telegram.polling == 1, timeout=1)
    second = asyncio.create_task(bot.get_updates(timeout=20))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, timeout=1)
    fake_telegram.push_message(CHAT, "hi")
    assert len(await asyncio.wait_for(second, timeout=1)) == 1


async def test_an_abandoned_poll_stops_waiting(fake_telegram: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    await fake_telegram.wait_until(lambda: fake_telegram.polling == 1, timeout=1)
    poll.cancel()  # as aiogram's Dispatcher does on stop_polling
    with pytest.raises(asyncio.CancelledError):
        await poll
    await fake_telegram.wait_until(lambda: fake_telegram.polling == 0, timeout=1)
    update_id = fake_telegram.push_message(CHAT, "/start")
    assert [u.update_id for u in await bot.get_updates(timeout=5)] == [update_id]
    assert "failed" not in fake_telegram.transcript()


async def test_stop_is_prompt_while_a_poller_waits() -> None:
    fake = FakeTelegram()
    await fake.start()
    bot = make_bot(fake)
    try:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await fake.wait_until(lambda: fake.polling == 1, timeout=1)
        started = time.monotonic()
        await fake.stop()
        assert time.monotonic() - started < 1.0
        assert await asyncio.wait_for(poll, timeout=1) == []
    finally:
        await fake.stop()
        await bot.session.close()


async def test_dispatcher_polling_answers_ping(fake_telegram: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(Command("ping"))
    async def ping(message: Message) -> None:
        await message.answer("pong", reply_markup=keyboard(("Again", "ping:again")))

    @dp.callback_query()
    async def again(query: CallbackQuery) -> None:
        await query.answer("again!", show_alert=True)

    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, polling_timeout=1, close_bot_session=False)
    )
    try:
        fake_telegram.push_message(CHAT, "/ping")
        reply = await fake_telegram.wait_for_message(CHAT, "pong", timeout=2)
        assert reply.message_id == 2  # the user's /ping was #1
        query_id = fake_telegram.press(reply, "Again")
        answer = await fake_telegram.wait_for_answer(query_id, timeout=2)
        assert (answer.text, answer.show_alert) == ("again!", True)
        # aiogram confirms an update with the offset of its next getUpdates.
        await fake_telegram.wait_until(lambda: fake_telegram.pending_updates() == [], timeout=2)
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, timeout=2)
    assert fake_telegram.transcript() == "\n".join(
        [
            "user 111: /ping",
            "bot → 111 #2: pong",
            "    [Again → ping:again]",
            "user 111 pressed ping:again on #2 [cq1]",
            "bot answered [cq1] (alert): again!",
        ]
    )
