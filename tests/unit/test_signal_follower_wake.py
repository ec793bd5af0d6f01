"""How the follower wakes: inotify on the event loop within a fraction of a millisecond of a
write, and the poll where inotify cannot be had (another OS, or its limits reached).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import asyncinotify
import pytest

from tests.unit.signal_follower_support import HEADER, append, follow, ids, primed, row


async def test_appends_are_followed_by_polling_where_inotify_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_inotify(*_args: object, **_kwargs: object) -> None:
        raise OSError(24, "inotify instance limit reached")

    monkeypatch.setattr(asyncinotify, "Inotify", no_inotify)
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")

    async with follow(log, poll_interval=0.05) as (_, stream):
        await primed(stream)
        append(log, row("s2"))
        assert ids(await stream.records(1)) == ["s2"]

    assert "polling every 0.05s" in caplog.text


async def test_an_append_wakes_the_follower_within_a_millisecond_or_two(tmp_path: Path) -> None:
    log = tmp_path / "signals_log.csv"
    log.write_text(f"{HEADER}\n{row('s1')}")
    latencies: list[float] = []

    async with follow(log) as (_, stream):  # no poll to fall back on within the test
        await primed(stream)
        for i in range(30):
            started = time.perf_counter()
            append(log, row(f"t{i}"))
            assert ids((await stream.next_batch()).records) == [f"t{i}"]
            latencies.append(time.perf_counter() - started)

    # watchfiles' 3 ms poll step and quiet step made this ~5 ms; inotify wakes in ~0.2 ms.
    # The bound leaves room for a loaded machine.
    assert statistics.median(latencies) < 0.003
