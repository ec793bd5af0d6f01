"""Health, as a monitor and the trader see it: ``GET /healthz`` and ``GET /metrics`` over a real
HTTP client against the server the app starts (``HEALTH_PORT``), ``/health`` in chat, and a port
already taken stopping the process with one line.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import App, build_app
from bot.notifier import Backoff
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.live_support import live_settings
from tests.integration.support import (
    CHAT,
    STRATEGY,
    AppFactory,
    Chat,
    Events,
    append_signal,
    open_from_chat,
    settings_for,
)
from tests.integration.test_process import start_bot
from trader.clock import ManualClock
from trader.errors import ConfigError
from trader.events import SignalSkipped

pytestmark = pytest.mark.timeout(60)

GRACE = 2.0  # seconds the public stream may be reconnecting in these tests (15 in production)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def whitelist(workdir: Path, *symbols: str) -> None:
    """The strategy file with ``symbols`` as its whitelist: the public stream carries them."""
    (workdir / "strategy.json").write_text(json.dumps({**STRATEGY, "top_coins": list(symbols)}))


HealthApps = Callable[..., Awaitable[App]]


@pytest.fixture
async def health_apps(
    workdir: Path, fake_bybit: FakeBybit, fake_telegram: FakeTelegram, clock: ManualClock
) -> AsyncIterator[HealthApps]:
    """Starts the whole process with ``HEALTH_PORT`` on a free port and a ``GRACE`` of its
    own; ``live=True`` in live mode with the fake's trade-only key. Stopped at the end."""
    running: list[App] = []

    async def start(*, live: bool = False, **overrides: object) -> App:
        values: dict[str, object] = {
            "telegram_bot_token": fake_telegram.token,
            "telegram_allowed_chat_ids": str(CHAT),
            "telegram_api_url": fake_telegram.url,
            "report_interval_minutes": 0,
            "health_port": free_port(),
            **overrides,
        }
        make = live_settings if live else settings_for
        app = await build_app(
            make(workdir, fake_bybit, **values),
            clock=clock,
            backoff=Backoff(first=0.05, cap=0.5),
            polling_timeout=1,
            health_grace=GRACE,
        )
        running.append(app)
        await app.start()
        return app

    yield start
    for app in running:
        await app.stop()


async def get(app: App, path: str) -> tuple[int, str]:
    port = app.runtime.settings.health_port
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def healthz(app: App) -> tuple[int, dict[str, Any]]:
    status, body = await get(app, "/healthz")
    return status, json.loads(body)


async def healthz_until(
    app: App,
    condition: Callable[[int, dict[str, Any]], bool],
    timeout: float = 15.0,  # noqa: ASYNC109
) -> tuple[int, dict[str, Any]]:
    """Poll ``/healthz`` (as a monitor does, only faster) until ``condition`` holds."""
    async with asyncio.timeout(timeout):
        while True:
            status, body = await healthz(app)
            if condition(status, body):
                return status, body
            await asyncio.sleep(0.1)  # a poll step, not a synchronisation


async def metrics(app: App) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, by name and labels, parsed as Prometheus parses it."""
    status, text = await get(app, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_healthz_is_200_while_well_and_503_once_the_public_stream_stays_down(
    health_apps: HealthApps, fake_bybit: FakeBybit, workdir: Path
) -> None:
    whitelist(workdir, "SOLUSDT")
    app = await health_apps()

    status, body = await healthz(app)
    assert status == 200
    assert body["healthy"] is True
    assert (body["engine_running"], body["trading_enabled"], body["mode"]) == (True, False, "paper")
    assert body["streams"]["public"]["state"] == "connected"
    assert body["streams"]["public"]["reconnects"] == 0
    assert list(body["streams"]) == ["public"]  # paper mode has no private stream
    assert body["last_signal_age_seconds"] is None
    assert body["clock_skew_ms"] is None
    assert isinstance(body["outbox_backlog"], int)

    fake_bybit.refuse_public_streams = True
    await fake_bybit.drop_public_streams()
    # A reconnect within the grace is no alarm...
    status, body = await healthz_until(
        app, lambda _, b: b["streams"]["public"]["state"] == "reconnecting"
    )
    assert status == 200, body
    # ...one that lasts longer is.
    status, body = await healthz_until(app, lambda s, _: s == 503)
    assert body["healthy"] is False
    assert body["streams"]["public"]["for_seconds"] >= GRACE
    assert any("public stream down" in problem for problem in body["problems"])

    fake_bybit.refuse_public_streams = False
    status, body = await healthz_until(app, lambda s, _: s == 200, timeout=40)
    assert body["streams"]["public"] == {**body["streams"]["public"], "state": "connected"}
    assert body["streams"]["public"]["reconnects"] == 1


async def test_healthz_is_503_once_the_engine_has_stopped(health_apps: HealthApps) -> None:
    app = await health_apps()
    assert (await healthz(app))[0] == 200

    await app.runtime.halt()  # the engine stops; the endpoint still answers

    status, body = await healthz(app)
    assert status == 503
    assert body["engine_running"] is False
    assert body["problems"] == ["engine not running"]


async def test_metrics_count_signals_positions_trades_latency_and_streams(
    health_apps: HealthApps,
    fake_telegram: FakeTelegram,
    workdir: Path,
    clock: ManualClock,
) -> None:
    app = await health_apps()
    events = Events()
    app.engine.bus.subscribe(events)
    chat = Chat(fake_telegram)
    before = await metrics(app)
    assert before[("trader_open_positions", ())] == 0
    assert before[("trader_closed_trades_total", ())] == 0
    assert before[("trader_stream_connected", (("stream", "public"),))] == 1
    assert before[("trader_stream_reconnects_total", (("stream", "public"),))] == 0
    assert ("trader_signal_to_order_seconds_count", ()) in before

    await open_from_chat(chat, workdir, clock, "SOLUSDT")
    append_signal(workdir / "signals_log.csv", clock.now(), "YFIUSDT", "BUY")  # excluded
    await events.next(SignalSkipped)
    opened = await metrics(app)
    await chat.ask("/close SOLUSDT", "Closed SOLUSDT")
    closed = await metrics(app)

    assert opened[("trader_open_positions", ())] == 1
    assert opened[("trader_signals_total", (("outcome", "opened"),))] == 1
    assert opened[("trader_signal_to_order_seconds_count", ())] == 1
    # The engine's clock stands still in tests: sighting to position takes no time by it.
    assert opened[("trader_signal_to_order_seconds_bucket", (("le", "0.005"),))] == 1
    assert opened[("trader_trading_enabled", ())] == 1
    assert opened[("trader_engine_running", ())] == 1
    assert opened[("trader_signals_total", (("outcome", "filtered:excluded_coin"),))] == 1
    assert closed[("trader_open_positions", ())] == 0
    assert closed[("trader_closed_trades_total", ())] == 1
    stats = await app.engine.stats()
    assert closed[("trader_net_pnl_usdt", ())] == pytest.approx(float(stats.net_pnl))
    assert closed[("trader_net_pnl_usdt", ())] < 0  # a flat market: the fees
    assert closed[("trader_outbox_backlog", ())] >= 0


async def test_health_in_chat_says_engine_streams_signal_age_outbox_uptime_and_version(
    health_apps: HealthApps,
    fake_telegram: FakeTelegram,
    workdir: Path,
    clock: ManualClock,
) -> None:
    whitelist(workdir, "SOLUSDT")
    app = await health_apps()
    events = Events()
    app.engine.bus.subscribe(events)
    chat = Chat(fake_telegram)

    first = await chat.ask("/HEALTH", "Health: OK")
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "SELL", confidence="0.1")
    await events.next(SignalSkipped)  # low confidence: seen, not traded
    clock.advance(timedelta(seconds=95))
    later = await chat.ask("/health", "Health")

    lines = first.plain.splitlines()
    assert lines[1] == "Engine: running · paper mode · trading OFF"
    assert lines[2].startswith("Public stream: connected for ")
    assert "Last signal: none yet" in lines
    assert "Outbox: empty" in lines or any(line.endswith("waiting") for line in lines)
    assert lines[-1].startswith("Up ")
    assert " · v" in lines[-1]
    assert not any(line.startswith("Clock") for line in lines)  # paper: no venue clock
    assert "Last signal: 1 min ago" in later.plain


async def test_health_in_live_mode_shows_the_private_stream_and_the_clock(
    health_apps: HealthApps, live_bybit: FakeBybit, fake_telegram: FakeTelegram
) -> None:
    live_bybit.set_clock_offset(3000)  # Bybit's clock 3 s ahead of ours
    app = await health_apps(live=True)
    chat = Chat(fake_telegram)

    reply = await chat.ask("/health", "Health")
    status, body = await healthz(app)

    assert "Engine: running · live mode · trading OFF" in reply.plain
    assert "Private stream: connected for " in reply.plain
    assert "ms behind Bybit" in reply.plain
    assert "Clock: ⚠️ " in reply.plain
    assert status == 200
    assert list(body["streams"]) == ["public", "private"]
    assert body["streams"]["private"]["state"] == "connected"
    assert 2500 < body["clock_skew_ms"] < 3500


async def test_a_health_port_in_use_stops_start_up_naming_it(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"HEALTH_PORT {port}"):
            await apps(health_port=port)
    assert fake_telegram.calls("getMe") == []  # stopped before anything else


async def test_the_process_exits_2_with_one_line_when_the_health_port_is_taken(
    tmp_path: Path, fake_bybit: FakeBybit, fake_telegram: FakeTelegram
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await start_bot(
            tmp_path,
            TELEGRAM_BOT_TOKEN=fake_telegram.token,
            TELEGRAM_ALLOWED_CHAT_IDS="111",
            TELEGRAM_API_URL=fake_telegram.url,
            BYBIT_REST_URL=fake_bybit.url,
            BYBIT_WS_PUBLIC_URL=fake_bybit.ws_public_url,
            HEALTH_PORT=str(port),
            LOG_FORMAT="json",
            LOG_LEVEL="DEBUG",  # some log lines before the last: each one JSON
        )
        async with asyncio.timeout(30):
            _, err = await proc.communicate()
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2
    assert lines[-1].startswith(f"bot: HEALTH_PORT {port} on HEALTH_HOST 127.0.0.1 cannot be used")
    assert "Traceback" not in err.decode()
    assert lines[:-1], "no log line to check"
    for line in lines[:-1]:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= entry.keys()
        assert entry["time"].endswith("Z")
