"""The process's log lines: UTC times with their zone (as every event's time is), as text or,
with ``LOG_FORMAT=json``, one JSON object per line for log shippers; and no ERROR line for a
WebSocket that closed normally."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class UtcFormatter(logging.Formatter):
    """``2026-11-27T11:20:00.123Z``: the UTC day of risk and reports, unmistakably."""

    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def converter(self, seconds: float | None) -> time.struct_time:
        return time.gmtime(seconds)


class JsonFormatter(UtcFormatter):
    """One JSON object per record, on one line: ``time`` (UTC, ISO 8601 with ``Z``),
    ``level``, ``logger``, ``message``, and ``exception`` (the traceback) when there is one.
    The secrets filter (``bot.redact``) has masked the message and the traceback by then."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Non-ASCII stays readable; a line break in a message is escaped, so one line each.
        return json.dumps(entry, ensure_ascii=False, default=str)


class NormalCloseFilter(logging.Filter):
    """websocket-client reports a normal close (code 1000, "goodbye") at ERROR; our streams
    say themselves when they reconnect, so it is only noise, dozens of times an hour."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("goodbye" in message and "1000" in message)


def make_handler(log_format: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """The handler every line goes through: to stderr (or ``stream``), as ``log_format``
    ("text" or "json") says."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else UtcFormatter(FORMAT))
    return handler


def configure(level: str, log_format: str = "text") -> None:
    logging.basicConfig(level=level, handlers=[make_handler(log_format)], force=True)
    websocket = logging.getLogger("websocket")
    websocket.addFilter(NormalCloseFilter())
    # pybit's and websocket-client's own chatter is noise at INFO.
    logging.getLogger("pybit").setLevel(logging.WARNING)
    websocket.setLevel(logging.WARNING)
