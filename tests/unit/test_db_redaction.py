"""No secret in the database: every error text the storage writes is masked like the logs.

Each test reads the raw SQLite rows back through a separate connection, as anyone who opens
the file would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import ClientResponseError, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bot.notifier import Backoff, Notifier
from storage.repositories import SqliteRepositories
from tests.unit.storage_support import raw
from trader.models import InvalidSignal, Side
from trader.ports import NewMessage, OrderRecord, OrderStatus
from trader.redaction import MASK, Redactor

TOKEN = "7012345678:AAHk3yQ-secret-half-of-the-token_xyz"
API_KEY = "XyZkEy0123456789ab"
API_SECRET = "s3cr3tBybitApiSecretValue0123456789ABCD"
SECRETS = [TOKEN, TOKEN.partition(":")[2], API_KEY, API_SECRET]
BOT_URL = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
T0 = datetime(2025, 10, 19, 5, 25, 3, tzinfo=UTC)


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[SqliteRepositories]:
    repositories = await SqliteRepositories.open(tmp_path / "live.db", secrets=SECRETS)
    yield repositories
    await repositories.close()


def assert_no_secret(rows: Sequence[tuple[Any, ...]]) -> None:
    text = repr(rows)
    for secret in SECRETS:
        assert secret not in text
    assert "secret-half" not in text  # nor any sizeable piece of one


def aiohttp_error(url: str = BOT_URL) -> ClientResponseError:
    """What aiohttp raises for a bad answer: its text quotes the request URL, token and all."""
    info = RequestInfo(URL(url), "POST", CIMultiDictProxy(CIMultiDict()), URL(url))
    return ClientResponseError(info, (), status=502, message="Bad Gateway")


# -- the outbox ---------------------------------------------------------------------------------


async def test_an_outbox_retry_error_with_the_token_and_the_bot_url_is_stored_masked(
    repo: SqliteRepositories,
) -> None:
    first, second = await repo.enqueue([NewMessage(1, "text", "a"), NewMessage(1, "text", "b")], T0)
    await repo.mark_retry(
        first, T0 + timedelta(seconds=5), f"ClientResponseError: {aiohttp_error()}"
    )
    await repo.mark_sent(second, T0, error=f"refused: token {TOKEN} is not allowed here")
    rows = raw(repo, "SELECT last_error FROM outbox ORDER BY id")
    assert_no_secret(rows)
    assert f"https://api.telegram.org/bot{MASK}/sendMessage" in rows[0][0]
    assert "502" in rows[0][0]  # the rest of the error is kept: it says what went wrong
    assert rows[1] == (f"refused: token {MASK} is not allowed here",)


async def test_the_notifier_stores_a_failed_deliverys_aiohttp_error_masked(
    repo: SqliteRepositories,
) -> None:
    """The whole path: aiohttp's error under aiogram's Bot → the Notifier's retry → SQLite."""

    class BrokenNetwork(BaseSession):
        async def make_request(
            self,
            bot: Bot,
            method: TelegramMethod[TelegramType],
            timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
        ) -> TelegramType:
            raise aiohttp_error(f"{self.api.base.format(token=bot.token, method='')}sendMessage")

        async def stream_content(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
            raise NotImplementedError

        async def close(self) -> None:
            pass

    bot = Bot(TOKEN, session=BrokenNetwork())
    notifier = Notifier(bot, repo, [1], backoff=Backoff(first=60), now=lambda: T0)
    await notifier.send_text("Opened SOLUSDT")
    assert await notifier.deliver_due() == 60
    rows = raw(repo, "SELECT attempts, last_error FROM outbox")
    assert rows[0][0] == 1
    assert_no_secret(rows)
    assert f"/bot{MASK}/sendMessage" in rows[0][1]


async def test_a_note_quoting_an_error_is_stored_masked_even_cut_short(
    repo: SqliteRepositories,
) -> None:
    # The engine cuts error texts to fit a chat line; the cut can fall inside the token, and
    # JSON escapes the ellipsis it leaves.
    cut = f"❌ Order failed: {aiohttp_error()}"
    cut = cut[: cut.index(TOKEN) + 20] + "…"
    png = "iVBORw0KGgo" + TOKEN[:6]  # a chart is never rewritten
    await repo.enqueue(
        [
            NewMessage(1, "text", json.dumps({"text": cut})),
            NewMessage(1, "edit", json.dumps({"signal_id": "s1", "text": f"key {API_KEY}"})),
            NewMessage(1, "photo", json.dumps({"png": png, "caption": f"by bot{TOKEN}"})),
        ],
        T0,
    )
    rows = raw(repo, "SELECT payload FROM outbox ORDER BY id")
    assert_no_secret(rows)
    assert TOKEN[:20] not in repr(rows)
    assert json.loads(rows[0][0])["text"].endswith(f"/bot{MASK}…")
    assert json.loads(rows[1][0]) == {"signal_id": "s1", "text": f"key {MASK}"}
    assert json.loads(rows[2][0]) == {"png": png, "caption": f"by bot{MASK}"}


async def test_notes_stored_with_a_change_are_masked_too(repo: SqliteRepositories) -> None:
    note = NewMessage(1, "text", json.dumps({"text": f"could not store: {aiohttp_error()}"}))
    await repo.set_setting("daily_loss_announced", "2025-10-19", notes=[note])
    assert_no_secret(raw(repo, "SELECT payload FROM outbox"))


# -- orders and signals -------------------------------------------------------------------------


async def test_an_order_error_with_the_api_secret_is_stored_masked(
    repo: SqliteRepositories,
) -> None:
    await repo.add_order(
        OrderRecord("e-s1", "s1", "SOLUSDT", Side.BUY, Decimal(1), False, OrderStatus.FAILED,
                    T0, error=f"api_key={API_KEY} rejected")
    )  # fmt: skip
    await repo.add_order(
        OrderRecord("e-s2", "s2", "SOLUSDT", Side.BUY, Decimal(1), False, OrderStatus.PENDING, T0)
    )
    await repo.update_order(
        "e-s2", OrderStatus.UNKNOWN, error=f"signing with secret {API_SECRET} failed (10004)"
    )
    rows = raw(repo, "SELECT link_id, error FROM orders ORDER BY link_id")
    assert_no_secret(rows)
    assert rows == [
        ("e-s1", f"api_key={MASK} rejected"),
        ("e-s2", f"signing with secret {MASK} failed (10004)"),
    ]


async def test_a_signal_outcome_quoting_an_error_is_stored_masked(
    repo: SqliteRepositories,
) -> None:
    await repo.record_signal(InvalidSignal("bad", f"key {API_KEY}", {"symbol": "X"}), T0)
    await repo.record_signal(InvalidSignal("s1", "no verdict", {"symbol": "SOLUSDT"}), T0)
    await repo.set_outcome("s1", f"failed:ClientResponseError: {aiohttp_error()}", T0)
    rows = raw(repo, "SELECT outcome FROM signals ORDER BY id")
    assert_no_secret(rows)
    assert rows[0] == (f"invalid:key {MASK}",)


async def test_without_secrets_every_text_is_stored_as_given(tmp_path: Path) -> None:
    repo = await SqliteRepositories.open(tmp_path / "paper.db")
    try:
        (message,) = await repo.enqueue([NewMessage(1, "text", "x")], T0)
        await repo.mark_retry(message, T0, f"failed {BOT_URL}")
        assert raw(repo, "SELECT last_error FROM outbox") == [(f"failed {BOT_URL}",)]
    finally:
        await repo.close()


# -- the masking rule itself --------------------------------------------------------------------


def test_every_secret_is_masked_wherever_it_appears() -> None:
    redact = Redactor(SECRETS)
    text = f"{BOT_URL}?k={API_KEY}&s={API_SECRET} and again {API_KEY}"
    assert redact(text) == f"https://api.telegram.org/bot{MASK}/sendMessage?k={MASK}&s={MASK}" + (
        f" and again {MASK}"
    )


def test_the_head_of_a_secret_left_by_a_cut_is_masked() -> None:
    redact = Redactor(SECRETS)
    assert redact(f"url /bot{TOKEN[:15]}…") == f"url /bot{MASK}…"
    assert redact(f"url /bot{TOKEN[:15]}...") == f"url /bot{MASK}..."
    assert redact(f"secret {API_SECRET[:9]}") == f"secret {MASK}"
    # Shorter than four characters, a head means nothing: "s3c" is not masked.
    assert redact("s3c") == "s3c"


def test_short_or_empty_secrets_are_ignored() -> None:
    redact = Redactor(["", "abc", "12345"])
    assert not redact
    assert redact("abc 12345") == "abc 12345"
