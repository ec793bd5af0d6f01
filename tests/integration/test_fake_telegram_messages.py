"""The fake Telegram Bot API against the real aiogram client: who the bot is, messages
sent, edited and answered, photos, commands and the webhook, and waiting for a message.
"""

from __future__ import annotations

import struct
import zlib

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramUnauthorizedError
from aiogram.types import BotCommand, BufferedInputFile, Message

from tests.fakes.telegram import FakeTelegram, TelegramWaitTimeout
from tests.integration.telegram_support import CHAT, bot, keyboard, make_bot

__all__ = ["bot"]  # fixtures


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
