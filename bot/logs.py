"""The process's log lines: UTC times with their zone (as every event's time is), and no
ERROR line for a WebSocket that closed normally."""

from __future__ import annotations

import logging
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class UtcFormatter(logging.Formatter):
    """``2026-11-27T11:20:00.123Z``: the UTC day of risk and reports, unmistakably."""

    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def converter(self, seconds: float | None) -> time.struct_time:
        return time.gmtime(seconds)


class NormalCloseFilter(logging.Filter):
    """websocket-client reports a normal close (code 1000, "goodbye") at ERROR; our streams
    say themselves when they reconnect, so it is only noise, dozens of times an hour."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("goodbye" in message and "1000" in message)


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(UtcFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    websocket = logging.getLogger("websocket")
    websocket.addFilter(NormalCloseFilter())
    # pybit's and websocket-client's own chatter is noise at INFO.
    logging.getLogger("pybit").setLevel(logging.WARNING)
    websocket.setLevel(logging.WARNING)
