"""The signals repository: each signal stored once with its exact fields, invalid rows
decided on sight, outcomes, and a stored signal loaded back whole.

Each test opens its own database under ``tmp_path``; nothing is mocked.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

from storage.repositories import SqliteRepositories
from tests.unit.storage_support import T0, make_signal, repo, scalar
from trader.models import InvalidSignal

__all__ = ["repo"]  # fixtures


async def test_signal_is_stored_once_with_exact_fields(repo: SqliteRepositories) -> None:
    signal = make_signal()
    assert await repo.record_signal(signal, T0 + timedelta(seconds=2)) is True
    assert await repo.record_signal(signal, T0 + timedelta(seconds=9)) is False

    stored = await repo.get_signal("sig-1")
    assert stored is not None
    assert (stored.symbol, stored.verdict, stored.outcome) == ("SOLUSDT", "BUY", None)
    assert stored.timestamp == T0
    assert stored.timestamp is not None
    assert stored.timestamp.tzinfo is UTC
    assert stored.seen_at == T0 + timedelta(seconds=2)  # the first sighting is kept
    assert await scalar(repo, "SELECT target_min FROM signals") == "3889.5301142857147"
    assert await repo.get_signal("nope") is None


async def test_signal_dedupe_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "paper.db"
    first = await SqliteRepositories.open(path)
    assert await first.record_signal(make_signal(), T0)
    await first.close()

    second = await SqliteRepositories.open(path)
    try:
        assert await second.record_signal(make_signal(), T0 + timedelta(hours=1)) is False
    finally:
        await second.close()


async def test_invalid_signal_is_decided_on_sight(repo: SqliteRepositories) -> None:
    raw = {"timestamp": "garbage", "symbol": "ETHUSDT", "verdict": "SELL", "confidence": "x"}
    assert await repo.record_signal(InvalidSignal("bad-1", "bad_timestamp", raw), T0)
    assert await repo.record_signal(InvalidSignal("bad-2", "empty_row"), T0)

    stored = await repo.get_signal("bad-1")
    assert stored is not None
    assert (stored.symbol, stored.verdict, stored.timestamp) == ("ETHUSDT", "SELL", None)
    assert stored.outcome == "invalid:bad_timestamp"
    empty = await repo.get_signal("bad-2")
    assert empty is not None
    assert (empty.symbol, empty.verdict) == ("", "")
    assert await scalar(repo, "SELECT raw FROM signals WHERE id = 'bad-1'") == (
        '{"timestamp": "garbage", "symbol": "ETHUSDT", "verdict": "SELL", "confidence": "x"}'
    )
    assert await repo.signals_without_outcome() == []


async def test_outcome_takes_a_signal_off_the_undecided_list(repo: SqliteRepositories) -> None:
    await repo.record_signal(make_signal("late"), T0 + timedelta(seconds=5))
    await repo.record_signal(make_signal("early"), T0)
    await repo.record_signal(make_signal("done"), T0)
    await repo.set_outcome("done", "filtered:low_confidence", T0 + timedelta(seconds=1))

    assert [s.id for s in await repo.signals_without_outcome()] == ["early", "late"]
    done = await repo.get_signal("done")
    assert done is not None
    assert done.outcome == "filtered:low_confidence"


async def test_a_stored_signal_loads_back_whole(repo: SqliteRepositories) -> None:
    signal = make_signal("full")
    await repo.record_signal(signal, T0)
    assert await repo.load_signal("full") == signal
    assert await repo.load_signal("missing") is None
