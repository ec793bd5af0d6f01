"""The fake Telegram Bot API's text rules, as Telegram applies them: the HTML subset it
parses and what it rejects, lengths in UTF-16 code units, and button data.
"""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

from tests.fakes.telegram import FakeTelegram, parse_html
from tests.integration.telegram_support import CHAT, bot, keyboard

__all__ = ["bot"]  # fixtures


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
