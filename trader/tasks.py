"""The engine's background work: every task tracked, none failing silently, and none
outliving the engine (nor the database it writes to)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Tasks:
    """The engine's background work: tracked (``wait_idle``, ``stop``) and never failing
    silently; once stopping, nothing new starts."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        if self.stopping:
            coro.close()
            log.warning("not starting %s: the engine is stopping", name)
            return
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def stop(self, grace: float) -> None:
        """Let work in flight finish for ``grace`` seconds, then cancel what is left: no work
        may outlive the database it writes to."""
        self.stopping = True
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
        leftovers = list(self._tasks)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)


async def cancel_loop(task: asyncio.Task[None] | None) -> None:
    """Stop one of the engine's loops (the TTL sweep, the venue check)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
