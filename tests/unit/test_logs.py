"""The process's log lines: UTC with its zone, and no ERROR for a normal WebSocket close."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot import logs


def test_log_times_are_utc_and_say_so() -> None:
    record = logging.LogRecord("trader", logging.INFO, __file__, 1, "hello", None, None)
    record.created = datetime(2026, 11, 27, 9, 30, 5, 250000, tzinfo=UTC).timestamp()
    record.msecs = 250
    line = logs.UtcFormatter(logs.FORMAT).format(record)
    assert line.startswith("2026-11-27T09:30:05.250Z INFO trader: hello")


def test_a_normal_websocket_close_is_not_an_error_line() -> None:
    goodbye = logging.LogRecord(
        "websocket",
        logging.ERROR,
        __file__,
        1,
        "Connection closed normally (code 1000) - goodbye",
        None,
        None,
    )
    broken = logging.LogRecord(
        "websocket", logging.ERROR, __file__, 1, "Connection to remote host was lost.", None, None
    )
    quiet = logs.NormalCloseFilter()
    assert not quiet.filter(goodbye)
    assert quiet.filter(broken)
