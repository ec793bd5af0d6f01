"""A Bybit key or secret typed wrong: one line naming the setting to fix, before anything
trades (the process exits 2 with it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.bybit import FakeBybit
from tests.integration.support import LIVE_KEY, LIVE_SECRET, settings_for
from trader.clock import ManualClock
from trader.errors import ConfigError
from trader.runtime import build_runtime


@pytest.mark.parametrize(
    ("key", "secret", "named"),
    [
        ("no-such-key-1", LIVE_SECRET, "^BYBIT_API_KEY is not a key Bybit knows"),
        (LIVE_KEY, "not-the-secret", "^BYBIT_API_SECRET does not match BYBIT_API_KEY"),
    ],
)
async def test_a_wrong_key_or_secret_is_named_in_one_line(
    workdir: Path,
    live_bybit: FakeBybit,
    clock: ManualClock,
    key: str,
    secret: str,
    named: str,
) -> None:
    settings = settings_for(
        workdir, live_bybit, trading_mode="live", bybit_api_key=key, bybit_api_secret=secret
    )
    runtime = await build_runtime(settings, clock=clock)
    try:
        with pytest.raises(ConfigError, match=named) as caught:
            await runtime.start()
        assert "\n" not in str(caught.value)
        assert secret not in str(caught.value)
        assert live_bybit.requests_to("/v5/order/create") == []
    finally:
        await runtime.stop()
