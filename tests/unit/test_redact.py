"""Secrets are masked in every log line, message and traceback alike."""

from __future__ import annotations

import logging

import pytest

from bot.redact import MASK, RedactSecrets

TOKEN = "123456:AAE-secret-token-value"


def test_secrets_in_messages_and_tracebacks_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    caplog.handler.addFilter(RedactSecrets([TOKEN, TOKEN.partition(":")[2], "k3y-bybit"]))
    caplog.set_level(logging.INFO)
    logger.info("GET http://host/bot%s/getMe with key %s", TOKEN, "k3y-bybit")
    try:
        raise ValueError(f"bad url /bot{TOKEN}/getUpdates")
    except ValueError:
        logger.exception("polling failed")
    text = caplog.text
    assert "secret-token-value" not in text
    assert "k3y-bybit" not in text
    assert f"/bot{MASK}/getMe" in text
    assert "ValueError: bad url" in text


def test_logs_and_the_database_share_one_rule(caplog: pytest.LogCaptureFixture) -> None:
    # The log filter is the storage's masking (trader.redaction): a line cut inside the
    # token, as error texts are cut to fit, loses the head of the token too.
    caplog.handler.addFilter(RedactSecrets([TOKEN]))
    caplog.set_level(logging.INFO)
    logging.getLogger("test.redact").info("order failed: POST /bot%s…", TOKEN[:12])
    assert caplog.records[-1].getMessage() == f"order failed: POST /bot{MASK}…"
