"""``python -m bot`` as a process: clear exit on missing settings, clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.fakes.bybit import FakeBybit

ENV_KEYS = ("TELEGRAM", "BYBIT", "TRADING_MODE", "SIGNALS_PATH", "STRATEGY_PATH", "DATA_DIR")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_KEYS)}
    env.update(extra)
    return env


async def test_missing_settings_exit_2_with_one_line_naming_them(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines == [
        "bot: no .env file here and TELEGRAM_BOT_TOKEN is not set: "
        "copy .env.example to .env and fill it in"
    ]


async def test_bad_strategy_value_exits_2_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "BYBIT_OPTIMAL_CONFIG.json").write_text('{"parameters": {"leverage": 0}}')
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=clean_env(TELEGRAM_BOT_TOKEN="1:secret-token", TELEGRAM_ALLOWED_CHAT_IDS="1"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    text = err.decode()
    assert "parameters.leverage" in text
    assert "Traceback" not in text
    assert "secret-token" not in text


async def test_runs_against_the_venue_and_stops_cleanly_on_sigterm(
    tmp_path: Path, fake_bybit: FakeBybit
) -> None:
    env = clean_env(
        TELEGRAM_BOT_TOKEN="1:secret-token",
        TELEGRAM_ALLOWED_CHAT_IDS="1",
        BYBIT_REST_URL=fake_bybit.url,
        BYBIT_WS_PUBLIC_URL=fake_bybit.ws_public_url,
        LOG_LEVEL="INFO",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    async with asyncio.timeout(30):
        while not any("engine running" in line for line in seen):
            line = await proc.stderr.readline()
            assert line, f"bot exited early: {seen}"
            seen.append(line.decode())
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        _, rest = await proc.communicate()
    assert proc.returncode == 0
    assert (tmp_path / "data" / "paper.db").exists()
    log_text = "".join(seen) + rest.decode()
    assert "stopping" in log_text
    assert "Traceback" not in log_text
    assert "secret-token" not in log_text
