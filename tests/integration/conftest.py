"""Fixtures of the integration tests: loopback fakes of the venues, one per test.

Each fake is started in the test's own event loop and stopped after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.bybit import FakeBybit


@pytest.fixture
async def fake_bybit() -> AsyncIterator[FakeBybit]:
    """A started fake Bybit with the default linear instruments and their tickers."""
    async with FakeBybit() as fake:
        yield fake
