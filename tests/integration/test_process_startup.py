"""Start-up mistakes as a new user makes them: one line naming the setting, exit code 2, no
traceback and no hang."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.test_process import start_bot


async def run_bot(tmp_path: Path, **env: str) -> tuple[int | None, list[str]]:
    proc = await start_bot(tmp_path, **env)
    async with asyncio.timeout(20):  # a hang fails here
        _, err = await proc.communicate()
    return proc.returncode, err.decode().strip().splitlines()


@pytest.mark.parametrize("token", ["abc", "123456"])
async def test_a_malformed_token_exits_2_with_one_line(tmp_path: Path, token: str) -> None:
    code, lines = await run_bot(tmp_path, TELEGRAM_BOT_TOKEN=token, TELEGRAM_ALLOWED_CHAT_IDS="1")
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("bot: TELEGRAM_BOT_TOKEN is invalid: is not a bot token")


async def test_a_strategy_path_with_a_typo_exits_2_naming_it(tmp_path: Path) -> None:
    code, lines = await run_bot(
        tmp_path,
        TELEGRAM_BOT_TOKEN="1:secret-token",
        TELEGRAM_ALLOWED_CHAT_IDS="1",
        STRATEGY_PATH="BYBIT_OPTIMAL_CONFG.json",
    )
    assert code == 2
    assert lines == [
        "bot: STRATEGY_PATH BYBIT_OPTIMAL_CONFG.json does not exist: fix the path, or unset "
        "STRATEGY_PATH to trade the built-in defaults"
    ]
