"""Bybit unreachable at start-up is no reason to stop: what start-up needs from it is asked
again (1 s doubling to a minute) until it answers. Chat is told once, and again when Bybit
answers; open positions keep their SL/TP (on Bybit, or simulated on its prices) meanwhile.
Only a failure worth retrying is waited out: a refusal (a bad key) still stops start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from trader.clock import Clock
from trader.errors import Retryable
from trader.events import VenueReachable, VenueUnreachable

log = logging.getLogger(__name__)

START_RETRY_FIRST, START_RETRY_MAX = 1.0, 60.0  # seconds between start-up attempts


async def until_answered(
    attempt: Callable[[], Awaitable[None]],
    tell: Callable[[VenueUnreachable | VenueReachable], None],
    clock: Clock,
    *,
    simulated: bool = False,
    first: float = START_RETRY_FIRST,
    most: float = START_RETRY_MAX,
) -> None:
    """Run ``attempt`` until it does not raise ``Retryable``; ``tell`` hears once that Bybit
    does not answer, and once that it does again. ``simulated``: paper mode, whose SL/TP
    wait for Bybit's prices."""
    delay, told = first, False
    while True:
        try:
            await attempt()
            break
        except Retryable as exc:
            if not told:
                tell(VenueUnreachable(str(exc)[:200], clock.now(), simulated))
                told = True
            log.warning("Bybit does not answer (%s); asking again in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, most)
    if told:
        tell(VenueReachable(clock.now()))
