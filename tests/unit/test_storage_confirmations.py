"""The confirmations repository: a confirmation and its messages per chat, and a decision
taken exactly once however many presses and timeouts race for it.

Each test opens its own database under ``tmp_path``; nothing is mocked.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage.repositories import SqliteRepositories
from tests.unit.storage_support import T0, repo
from trader.ports import Confirmation

__all__ = ["repo"]  # fixtures


def make_confirmation(signal_id: str = "sig-1") -> Confirmation:
    return Confirmation(
        signal_id=signal_id,
        ref=f"ref-{signal_id}",
        status="pending",
        created_at=T0,
        expires_at=T0 + timedelta(seconds=60),
    )


async def test_confirmation_round_trips(repo: SqliteRepositories) -> None:
    await repo.add_confirmation(make_confirmation())
    assert await repo.get_confirmation("sig-1") == make_confirmation()
    assert await repo.confirmation_by_ref("ref-sig-1") == make_confirmation()
    assert await repo.get_confirmation("other") is None
    assert await repo.confirmation_by_ref("other") is None


async def test_confirmation_messages_are_remembered_per_chat(repo: SqliteRepositories) -> None:
    await repo.add_confirmation(make_confirmation())
    await repo.add_confirmation_message("sig-1", 42, 7)
    await repo.add_confirmation_message("sig-1", 41, 9)
    await repo.add_confirmation_message("sig-1", 42, 7)  # a redelivered send is harmless
    assert await repo.confirmation_messages("sig-1") == [(41, 9), (42, 7)]
    assert await repo.confirmation_messages("other") == []


async def test_second_press_on_confirmation_does_nothing(repo: SqliteRepositories) -> None:
    await repo.add_confirmation(make_confirmation("a"))
    await repo.add_confirmation(make_confirmation("b"))

    assert await repo.resolve_confirmation("a", "approved", T0) is True
    assert await repo.resolve_confirmation("a", "expired", T0) is False
    assert await repo.resolve_confirmation("missing", "declined", T0) is False
    stored = await repo.get_confirmation("a")
    assert stored is not None
    assert stored.status == "approved"
    assert [c.signal_id for c in await repo.pending_confirmations()] == ["b"]
    with pytest.raises(ValueError, match="pending"):
        await repo.resolve_confirmation("b", "pending", T0)


async def test_racing_button_and_timeout_resolve_exactly_once(repo: SqliteRepositories) -> None:
    await repo.add_confirmation(make_confirmation())
    results = await asyncio.gather(
        repo.resolve_confirmation("sig-1", "approved", T0),
        repo.resolve_confirmation("sig-1", "expired", T0),
        repo.resolve_confirmation("sig-1", "declined", T0),
    )
    assert sorted(results) == [False, False, True]
