"""The fake Telegram Bot API against the real aiogram client: wire format, rules, faults."""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from tests.fakes.telegram import FakeTelegram, TelegramWaitTimeout, parse_html

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


def png(width: int, height: int) -> bytes:
    """A valid grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in buttons]]
    )


async def test_get_me_wrong_token_and_unknown_method(fake_telegram: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "trader_test_bot", True)

    intruder = make_bot(fake_telegram, token="999:WRONG-TOKEN")
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await intruder.get_me()
    finally:
        await intruder.session.close()

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{fake_telegram.url}/bot{fake_telegram.token}/noSuchMethod") as resp,
    ):
        assert resp.status == 404
        assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert [(c.method, c.ok) for c in fake_telegram.calls()] == [
        ("getMe", True),
        ("getMe", False),
        ("noSuchMethod", False),
    ]


async def test_send_edit_and_answer_round_trip(fake_telegram: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(
        CHAT,
        "<b>BTCUSDT</b> long &amp; strong\nentry 65000",
        parse_mode="HTML",
        reply_markup=keyboard(("Close", "td1:close:abc"), ("Keep", "td1:keep:abc")),
    )
    assert sent.message_id == 1
    assert sent.text == "BTCUSDT long & strong\nentry 65000"
    assert sent.entities is not None
    assert (sent.entities[0].type, sent.entities[0].offset, sent.entities[0].length) == (
        "bold",
        0,
        7,
    )
    assert sent.reply_markup is not None
    record = fake_telegram.sent(CHAT)[0]
    assert record.text == "<b>BTCUSDT</b> long &amp; strong\nentry 65000"
    assert record.plain == sent.text
    assert record.buttons == [["Close", "Keep"]]

    # The user presses a button; the bot answers it once.
    query_id = fake_telegram.press(record, "Close")
    updates = await bot.get_updates()
    query = updates[-1].callback_query
    assert query is not None
    assert (query.id, query.data) == (query_id, "td1:close:abc")
    assert isinstance(query.message, Message)
    assert query.message.text == sent.text
    assert await bot.answer_callback_query(query_id, text="Closing…")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("cq-never-issued")
    answer = await fake_telegram.wait_for_answer(query_id, timeout=1)
    assert (answer.text, answer.show_alert) == ("Closing…", False)

    # Edit: new text; the same again is "not modified"; an unknown message is "not found".
    edited = await bot.edit_message_text(
        "<i>closed</i>", chat_id=CHAT, message_id=1, parse_mode="HTML"
    )
    assert isinstance(edited, Message)
    assert edited.text == "closed"
    assert edited.reply_markup is None  # no reply_markup in the edit: the keyboard goes
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("<i>closed</i>", chat_id=CHAT, message_id=1, parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=99)
    await bot.edit_message_reply_markup(
        chat_id=CHAT, message_id=1, reply_markup=keyboard(("Undo", "td1:undo:abc"))
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=CHAT, message_id=1, reply_markup=keyboard(("Undo", "td1:undo:abc"))
        )

    now = fake_telegram.message(CHAT, 1)
    assert (now.plain, now.buttons, now.edits) == ("closed", [["Undo"]], 2)
    assert fake_telegram.sent(CHAT)[0].plain.startswith("BTCUSDT")  # as sent, not as now
    assert [m.plain for m in fake_telegram.edits(CHAT)] == ["closed", "closed"]
    assert fake_telegram.transcript() == "\n".join(
        [
            "bot → 111 #1: BTCUSDT long & strong",
            "    entry 65000",
            "    [Close → td1:close:abc] [Keep → td1:keep:abc]",
            "user 111 pressed td1:close:abc on #1 [cq1]",
            "bot answered [cq1]: Closing…",
            "bot answerCallbackQuery failed: 400 " + "Bad Request: query is too old and response "
            "timeout expired or query ID is invalid",
            "bot answerCallbackQuery failed: 400 " + "Bad Request: query is too old and response "
            "timeout expired or query ID is invalid",
            "bot edited 111 #1: closed",
            "bot editMessageText to 111 #1 failed: 400 Bad Request: message is not modified: "
            "specified new message content and reply markup are exactly the same as a current "
            "content and reply markup of the message",
            "    text: <i>closed</i>",
            "bot editMessageText to 111 #99 failed: 400 Bad Request: message to edit not found",
            "    text: x",
            "bot edited 111 #1 keyboard:",
            "    [Undo → td1:undo:abc]",
            "bot editMessageReplyMarkup to 111 #1 failed: 400 Bad Request: message is not "
            "modified: specified new message content and reply markup are exactly the same as a "
            "current content and reply markup of the message",
        ]
    )


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


async def test_send_photo_records_the_png(fake_telegram: FakeTelegram, bot: Bot) -> None:
    image = png(640, 480)
    sent = await bot.send_photo(
        CHAT,
        BufferedInputFile(image, filename="equity.png"),
        caption="Equity <b>+12.5</b> USDT",
        parse_mode="HTML",
    )
    assert sent.photo is not None
    assert (sent.photo[-1].width, sent.photo[-1].height) == (640, 480)
    assert sent.caption == "Equity +12.5 USDT"
    record = fake_telegram.sent(CHAT)[0]
    assert (record.kind, record.photo) == ("photo", image)
    assert record.caption == "Equity <b>+12.5</b> USDT"
    assert record.plain == "Equity +12.5 USDT"
    assert fake_telegram.calls("sendPhoto")[0].params["photo"] == image
    # A file_id the fake issued can be sent again.
    again = await bot.send_photo(CHAT, sent.photo[-1].file_id)
    assert again.message_id == 2

    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(CHAT, BufferedInputFile(b"GIF89a not a png", filename="x.gif"))
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(CHAT, BufferedInputFile(image, filename="x.png"), caption="x" * 1025)
    assert len(fake_telegram.sent(CHAT)) == 2
    assert fake_telegram.transcript().splitlines()[0] == (
        f"bot → 111 #1 [photo PNG {len(image):,} bytes] Equity +12.5 USDT"
    )


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("<b>1 < 2</b>", 'Unsupported start tag "" at byte offset 5'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<i>x</b>", 'Unmatched end tag at byte offset 4, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("line<br>next", 'Unsupported start tag "br" at byte offset 4'),
        ("AT&T", 'Character "&" at byte offset 2 does not start an entity'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("ü <x>", 'Unsupported start tag "x" at byte offset 3'),
    ],
)
def test_parse_html_rejects_what_telegram_rejects(html: str, reason: str) -> None:
    with pytest.raises(ValueError, match=r"byte offset|end tag|&|tg-spoiler") as caught:
        parse_html(html)
    assert str(caught.value).startswith(reason)


def test_parse_html_accepts_the_supported_subset() -> None:
    html = (
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike>"
        '<del>d</del><tg-spoiler>p</tg-spoiler><span class="tg-spoiler">q</span><code>c</code>'
        '<pre><code class="language-python">x = 1</code></pre><a href="https://x.org/?a=1&amp;b=2">'
        "link</a><blockquote expandable>quote</blockquote>"
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> 1 &lt; 2 &gt; 0 &quot;&#38;&#x41;'
    )
    plain, entities = parse_html(html)
    assert plain == 'bsieunskdpqcx = 1linkquote👍 1 < 2 > 0 "&A'
    kinds = [e["type"] for e in entities]
    assert kinds == [
        "bold",
        "bold",
        "italic",
        "italic",
        "underline",
        "underline",
        "strikethrough",
        "strikethrough",
        "strikethrough",
        "spoiler",
        "spoiler",
        "code",
        "pre",
        "text_link",
        "expandable_blockquote",
        "custom_emoji",
    ]
    assert entities[12] == {"type": "pre", "offset": 12, "length": 5, "language": "python"}
    assert entities[13]["url"] == "https://x.org/?a=1&b=2"
    assert entities[15] == {
        "type": "custom_emoji",
        "offset": 26,
        "length": 2,  # UTF-16 code units
        "custom_emoji_id": "5368324170671202286",
    }


async def test_text_rules_over_the_wire(fake_telegram: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match=r"can't parse entities: Unsupported start tag"):
        await bot.send_message(CHAT, "<b>1 < 2</b>", parse_mode="HTML")
    ok = await bot.send_message(CHAT, "<b>1 &lt; 2</b>", parse_mode="HTML")
    assert ok.text == "1 < 2"
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, "<b></b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "x" * 4095 + "😀")  # 4097 UTF-16 code units
    await bot.send_message(CHAT, "<i>" + "x" * 4096 + "</i>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "x", reply_markup=keyboard(("Go", "d" * 65)))
    # Markdown is passed through unchecked.
    await bot.send_message(CHAT, "*bold* 1 < 2", parse_mode="MarkdownV2")
    assert [m.plain[:5] for m in fake_telegram.sent(CHAT)] == ["1 < 2", "xxxxx", "*bold"]
    assert [c.ok for c in fake_telegram.calls("sendMessage")] == [
        False,
        True,
        False,
        False,
        False,
        True,
        False,
        True,
    ]


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


async def test_commands_and_webhook_are_recorded(fake_telegram: FakeTelegram, bot: Bot) -> None:
    fake_telegram.push_message(CHAT, "old news")
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert fake_telegram.drop_pending_updates is True
    assert fake_telegram.pending_updates() == []
    await bot.set_my_commands(
        [
            BotCommand(command="status", description="Balance and positions"),
            BotCommand(command="close", description="Close a position"),
        ]
    )
    assert fake_telegram.commands == [
        ("status", "Balance and positions"),
        ("close", "Close a position"),
    ]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Status", description="x")])
    assert fake_telegram.transcript().splitlines()[1:5] == [
        "bot deleted the webhook (drop pending updates: yes)",
        "bot set commands:",
        "    /status — Balance and positions",
        "    /close — Close a position",
    ]


async def test_wait_for_message_times_out_with_the_transcript(
    fake_telegram: FakeTelegram, bot: Bot
) -> None:
    await bot.send_message(CHAT, "pong")
    assert (await fake_telegram.wait_for_message(CHAT, "po", timeout=0.5)).message_id == 1
    with pytest.raises(TelegramWaitTimeout) as caught:
        await fake_telegram.wait_for_message(CHAT, "nothing like this", timeout=0.1)
    assert isinstance(caught.value, AssertionError)
    assert "bot → 111 #1: pong" in str(caught.value)
    with pytest.raises(LookupError, match=r"no bot message #5 in chat 111; it has \[1\]"):
        fake_telegram.message(CHAT, 5)


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
