"""``python -m bot`` as a process: clear exit on missing settings, clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram

ENV_KEYS = ("TELEGRAM", "BYBIT", "TRADING_MODE", "SIGNALS_PATH", "STRATEGY_PATH", "DATA_DIR")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_KEYS)}
    env.update(extra)
    return env


async def start_bot(tmp_path: Path, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=clean_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_missing_settings_exit_2_with_one_line_naming_them(tmp_path: Path) -> None:
    proc = await start_bot(tmp_path)
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
    proc = await start_bot(
        tmp_path, TELEGRAM_BOT_TOKEN="1:secret-token", TELEGRAM_ALLOWED_CHAT_IDS="1"
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    text = err.decode()
    assert "parameters.leverage" in text
    assert "Traceback" not in text
    assert "secret-token" not in text


async def read_until(proc: asyncio.subprocess.Process, text: str, seen: list[str]) -> None:
    assert proc.stderr is not None
    async with asyncio.timeout(30):
        while not any(text in line for line in seen):
            line = await proc.stderr.readline()
            assert line, f"bot exited early: {seen}"
            seen.append(line.decode())


async def test_answers_on_telegram_and_stops_cleanly_on_sigterm(
    tmp_path: Path, fake_bybit: FakeBybit, fake_telegram: FakeTelegram
) -> None:
    proc = await start_bot(
        tmp_path,
        TELEGRAM_BOT_TOKEN=fake_telegram.token,
        TELEGRAM_ALLOWED_CHAT_IDS="111",
        TELEGRAM_API_URL=fake_telegram.url,
        BYBIT_REST_URL=fake_bybit.url,
        BYBIT_WS_PUBLIC_URL=fake_bybit.ws_public_url,
        LOG_LEVEL="INFO",
    )
    seen: list[str] = []
    await read_until(proc, "engine running", seen)
    fake_telegram.push_message(111, "/status")
    await fake_telegram.wait_for_message(111, "Status", timeout=15)

    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        _, rest = await proc.communicate()
    assert proc.returncode == 0
    assert (tmp_path / "data" / "paper.db").exists()
    log_text = "".join(seen) + rest.decode()
    assert "stopping" in log_text
    assert "Traceback" not in log_text
    assert fake_telegram.token not in log_text
    assert fake_telegram.token.split(":")[1] not in log_text
    # The shutdown notice was flushed from the outbox before the process ended.
    await fake_telegram.wait_for_message(111, "Engine stopped", timeout=5)


async def test_a_token_telegram_refuses_exits_2_with_one_line(
    tmp_path: Path, fake_bybit: FakeBybit, fake_telegram: FakeTelegram
) -> None:
    proc = await start_bot(
        tmp_path,
        TELEGRAM_BOT_TOKEN="42:not-the-token",
        TELEGRAM_ALLOWED_CHAT_IDS="111",
        TELEGRAM_API_URL=fake_telegram.url,
        BYBIT_REST_URL=fake_bybit.url,
        BYBIT_WS_PUBLIC_URL=fake_bybit.ws_public_url,
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert lines[-1] == (
        "bot: TELEGRAM_BOT_TOKEN was refused by Telegram (401 Unauthorized); check the token"
    )
    assert "not-the-token" not in err.decode()
    assert "Traceback" not in err.decode()


async def test_bybit_unreachable_at_start_keeps_the_bot_up_and_sigterm_still_stops_it(
    tmp_path: Path, fake_bybit: FakeBybit, fake_telegram: FakeTelegram
) -> None:
    fake_bybit.add_api_key("key-unreachable", "secret-unreachable")
    fake_bybit.fail_next("/v5/market/time", http_status=502, times=1_000_000)
    proc = await start_bot(
        tmp_path,
        TELEGRAM_BOT_TOKEN=fake_telegram.token,
        TELEGRAM_ALLOWED_CHAT_IDS="111",
        TELEGRAM_API_URL=fake_telegram.url,
        TRADING_MODE="live",
        BYBIT_API_KEY="key-unreachable",
        BYBIT_API_SECRET="secret-unreachable",
        BYBIT_REST_URL=fake_bybit.url,
        BYBIT_WS_PUBLIC_URL=fake_bybit.ws_public_url,
        BYBIT_WS_PRIVATE_URL=fake_bybit.ws_private_url,
        LOG_LEVEL="INFO",
    )
    await fake_telegram.wait_for_message(111, "Bybit does not answer", timeout=20)
    fake_telegram.push_message(111, "/status")
    await fake_telegram.wait_for_message(111, "Balance: unknown", timeout=5)
    assert proc.returncode is None  # still running, not a traceback and an exit

    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        _, rest = await proc.communicate()
    assert proc.returncode == 0
    assert "Traceback" not in rest.decode()
