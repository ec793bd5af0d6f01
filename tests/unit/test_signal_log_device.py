"""A signal log that is not a regular file (a link to /dev/zero, say): never read, never a
spinning loop; the bot keeps answering."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import aclosing
from pathlib import Path

import pytest

from trader.signal_follower import SignalFollower

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")


async def test_a_log_linked_to_dev_zero_is_refused_and_the_loop_stays_free(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "signals_log.csv"
    log.symlink_to("/dev/zero")
    follower = SignalFollower(log, poll_interval=0.05)
    loop = asyncio.get_running_loop()
    late = []
    with caplog.at_level(logging.WARNING):
        async with aclosing(follower.batches()) as batches:
            reader = asyncio.ensure_future(anext(batches))
            for _ in range(20):  # ~0.4 s in which other work must keep its turn
                asked = loop.time()
                await asyncio.sleep(0.02)
                late.append(loop.time() - asked - 0.02)
            assert not reader.done()  # nothing was read from it
            await follower.close()
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(reader, 2)
    assert max(late) < 0.1  # no stall: /status would answer
    refusals = [r for r in caplog.records if "not a regular file" in r.getMessage()]
    assert len(refusals) == 1  # said once, not at every poll
