"""The offset between this machine's clock and Bybit's, measured from ``/v5/market/time``.

pybit signs with the local clock. REST allows for a clock behind Bybit's (``recv_window``),
but the private stream's login does not: its expiry is made to allow for the offset measured
here (``bybit_stream``), and an offset over ``SKEW_REPORTED_MS`` is reported with its size.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trader.errors import ExchangeError
from trader.exchange.bybit_wire import call_pybit

SKEW_REPORTED_MS = 1000  # pybit's own login would already be refused by this much


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """Bybit's clock minus ours (positive: ours is behind), within half ``round_trip_ms``."""

    offset_ms: int
    round_trip_ms: int

    @property
    def reported(self) -> bool:
        return abs(self.offset_ms) > SKEW_REPORTED_MS


def offset_from(response: Mapping[str, Any], sent_ns: int, received_ns: int) -> ClockOffset:
    """The offset from a ``/v5/market/time`` answer to a request sent at ``sent_ns`` and
    answered at ``received_ns`` (our clock): Bybit's time against the middle of the round
    trip, the best guess of when Bybit read its clock."""
    server_ns = _server_ns(response)
    middle_ns = (sent_ns + received_ns) // 2
    return ClockOffset(
        offset_ms=round((server_ns - middle_ns) / 1_000_000),
        round_trip_ms=round((received_ns - sent_ns) / 1_000_000),
    )


async def measure_offset(http: Any) -> ClockOffset:
    """Ask Bybit's server time through ``http`` (pybit's ``HTTP``) and compare."""
    sent_ns = time.time_ns()
    response = await call_pybit("server time", http.get_server_time)
    received_ns = time.time_ns()
    return offset_from(response, sent_ns, received_ns)


def _server_ns(response: Mapping[str, Any]) -> int:
    """Bybit's time in ns: ``result.timeNano``, else the envelope's ``time`` (ms), else
    ``result.timeSecond``."""
    result = response.get("result")
    result = result if isinstance(result, Mapping) else {}
    candidates: tuple[tuple[Any, int], ...] = (
        (result.get("timeNano"), 1),
        (response.get("time"), 1_000_000),
        (result.get("timeSecond"), 1_000_000_000),
    )
    for value, scale in candidates:
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if number > 0:
            return number * scale
    raise ExchangeError("Bybit sent a server time without timeNano, time or timeSecond")
