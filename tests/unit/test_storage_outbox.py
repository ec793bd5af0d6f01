"""The notification outbox: each chat's oldest unsent message first, retries deferred,
sent messages gone, and the queue kept across a restart.

Each test opens its own database under ``tmp_path``; nothing is mocked.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from storage.repositories import SqliteRepositories
from tests.unit.storage_support import MINUTE, T0, repo, scalar
from trader.ports import NewMessage

__all__ = ["repo"]  # fixtures


async def test_outbox_offers_each_chats_oldest_unsent_message(repo: SqliteRepositories) -> None:
    first, second = await repo.enqueue(
        [NewMessage(1, "text", '{"text": "opened"}'), NewMessage(2, "photo", "{}")], T0
    )
    (third,) = await repo.enqueue([NewMessage(1, "text", '{"text": "later"}')], T0 + MINUTE)
    assert first < second < third

    heads = await repo.next_unsent()
    assert [(m.id, m.chat_id, m.kind, m.attempts) for m in heads] == [
        (first, 1, "text", 0),
        (second, 2, "photo", 0),
    ]
    assert heads[0].payload == '{"text": "opened"}'
    assert heads[0].created_at == T0
    assert heads[0].next_attempt_at == T0
    await repo.mark_sent(first, T0 + MINUTE)
    assert [m.id for m in await repo.next_unsent()] == [second, third]


async def test_outbox_retry_defers_and_sent_messages_leave(repo: SqliteRepositories) -> None:
    first, second = await repo.enqueue([NewMessage(1, "text", "a"), NewMessage(1, "text", "b")], T0)

    await repo.mark_retry(first, T0 + timedelta(seconds=30), "TelegramNetworkError")
    await repo.mark_sent(second, T0 + timedelta(seconds=1))
    unsent = await repo.next_unsent()
    assert [(m.id, m.attempts, m.next_attempt_at) for m in unsent] == [
        (first, 1, T0 + timedelta(seconds=30))
    ]
    assert await scalar(repo, "SELECT last_error FROM outbox WHERE id = ?", (first,)) == (
        "TelegramNetworkError"
    )
    await repo.mark_sent(first, T0 + MINUTE, error="Forbidden: bot was blocked by the user")
    assert await repo.next_unsent() == []
    assert await scalar(repo, "SELECT last_error FROM outbox WHERE id = ?", (first,)) == (
        "Forbidden: bot was blocked by the user"
    )


async def test_outbox_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    before = await SqliteRepositories.open(path)
    (message_id,) = await before.enqueue([NewMessage(5, "text", "x")], T0)
    await before.close()
    after = await SqliteRepositories.open(path)
    try:
        assert [m.id for m in await after.next_unsent()] == [message_id]
    finally:
        await after.close()
