"""The process's log lines: UTC with its zone, as text or one JSON object per line, secrets
masked either way, and no ERROR for a normal WebSocket close."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot import logs, redact


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


def _log_through(handler: logging.Handler, emit: Callable[[logging.Logger], None]) -> None:
    logger = logging.getLogger(f"test.logs.{id(handler)}")
    logger.propagate, logger.level = False, logging.DEBUG
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)


def test_json_format_writes_one_object_per_line_with_utc_time() -> None:
    out = io.StringIO()
    _log_through(
        logs.make_handler("json", out),
        lambda logger: logger.warning("two\nlines, %s and «ünïcode»", "args"),
    )

    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry.keys() == {"time", "level", "logger", "message"}
    assert entry["level"] == "WARNING"
    assert entry["logger"].startswith("test.logs.")
    assert entry["message"] == "two\nlines, args and «ünïcode»"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    stamp = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)


def test_json_format_carries_the_traceback_with_secrets_masked() -> None:
    out = io.StringIO()
    handler = logs.make_handler("json", out)
    handler.addFilter(redact.RedactSecrets(["tok-SECRET-123"]))

    def fail(logger: logging.Logger) -> None:
        try:
            raise ValueError("GET https://api.telegram.org/bottok-SECRET-123/getMe failed")
        except ValueError:
            logger.exception("call with tok-SECRET-123 failed")

    _log_through(handler, fail)

    text = out.getvalue()
    assert "tok-SECRET-123" not in text
    entry = json.loads(text)
    assert entry["level"] == "ERROR"
    assert entry["message"] == f"call with {redact.MASK} failed"
    assert entry["exception"].startswith("Traceback (most recent call last)")
    assert (
        f"ValueError: GET https://api.telegram.org/bot{redact.MASK}/getMe failed"
        in (entry["exception"])
    )


def test_text_format_stays_the_default() -> None:
    out = io.StringIO()
    _log_through(logs.make_handler(stream=out), lambda logger: logger.info("plain"))
    assert re.fullmatch(r"\S+Z INFO test\.logs\.\d+: plain\n", out.getvalue())
