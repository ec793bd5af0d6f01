"""The process's health: what ``/health`` and ``GET /healthz`` report (the engine, the venue's
streams, the signal log, the clock, the outbox), and the HTTP endpoint for monitors and
Prometheus (``HEALTH_PORT``), run beside the bot in the same loop.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.metrics import Metrics
from trader.engine import Engine
from trader.errors import ConfigError
from trader.exchange.base import RECONNECTING, StreamHealth

log = logging.getLogger(__name__)

DISTRIBUTION = "bybit-signal-trader"
# A stream down for longer than this makes the process unhealthy; a reconnect is shorter.
RECONNECT_GRACE = 15.0


@dataclass(frozen=True, slots=True)
class HealthReport:
    """One look at the process. ``healthy``: the engine runs and every stream it needs is
    connected, or has been reconnecting for at most the grace."""

    healthy: bool
    running: bool
    trading: bool
    mode: str
    streams: Mapping[str, StreamHealth]
    last_signal_age: timedelta | None  # None: no signal seen yet
    clock_skew_ms: int | None  # the venue's clock minus ours; None in paper mode
    outbox_backlog: int
    uptime: timedelta
    version: str
    problems: tuple[str, ...] = ()  # why not healthy, one short phrase each

    def as_json(self) -> dict[str, Any]:
        """The body of ``GET /healthz``: seconds as numbers, states as words."""
        age = self.last_signal_age
        return {
            "healthy": self.healthy,
            "engine_running": self.running,
            "trading_enabled": self.trading,
            "mode": self.mode,
            "streams": {
                name: {
                    "state": stream.state,
                    "for_seconds": round(stream.for_seconds, 1),
                    "reconnects": stream.reconnects,
                }
                for name, stream in self.streams.items()
            },
            "last_signal_age_seconds": None if age is None else round(age.total_seconds(), 1),
            "clock_skew_ms": self.clock_skew_ms,
            "outbox_backlog": self.outbox_backlog,
            "uptime_seconds": round(self.uptime.total_seconds(), 1),
            "version": self.version,
            "problems": list(self.problems),
        }


class Health:
    """Looks at the engine on demand; ``grace``: seconds a stream may be reconnecting before
    the process counts as unhealthy."""

    def __init__(self, engine: Engine, *, grace: float = RECONNECT_GRACE) -> None:
        self._engine = engine
        self._grace = grace
        self._started = time.monotonic()
        self._version = package_version()

    async def report(self) -> HealthReport:
        engine = self._engine
        streams = engine.exchange.streams()
        last = engine.signal_watch.last_at
        problems = [] if engine.running else ["engine not running"]
        problems += [
            f"{name} stream down for {stream.for_seconds:.0f} s"
            for name, stream in streams.items()
            if stream.state == RECONNECTING and stream.for_seconds > self._grace
        ]
        return HealthReport(
            healthy=not problems,
            running=engine.running,
            trading=engine.trading_enabled,
            mode=engine.exchange.mode,
            streams=streams,
            last_signal_age=None if last is None else engine.clock.now() - last,
            clock_skew_ms=engine.exchange.clock_skew_ms,
            outbox_backlog=await engine.repo.unsent_count(),
            uptime=timedelta(seconds=time.monotonic() - self._started),
            version=self._version,
            problems=tuple(problems),
        )


def package_version() -> str:
    """The installed package's version; from ``pyproject.toml`` when run from a checkout that
    was never installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        with pyproject.open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


class HealthServer:
    """``GET /healthz`` (JSON; 200 healthy, 503 not) and ``GET /metrics`` (Prometheus text)
    on ``host:port``. Port 0 binds a free port (``port`` says which, once started)."""

    def __init__(self, health: Health, metrics: Metrics, *, host: str, port: int) -> None:
        self._health = health
        self._metrics = metrics
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The port bound (the one asked for, or the one port 0 got)."""
        if self._runner is not None:
            for address in self._runner.addresses:
                if isinstance(address, tuple):
                    return int(address[1])
        return self._port

    async def start(self) -> None:
        """Listen; a port that cannot be bound (in use, say) is a ``ConfigError`` naming
        ``HEALTH_PORT``: the process stops with that one line."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._scrape)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except OSError as exc:
            await runner.cleanup()
            reason = exc.strerror or str(exc)
            raise ConfigError(
                f"HEALTH_PORT {self._port} on HEALTH_HOST {self._host} cannot be used: {reason}"
            ) from None
        self._runner = runner
        log.info("health endpoint on http://%s:%d/healthz and /metrics", self._host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        report = await self._health.report()
        return web.json_response(report.as_json(), status=200 if report.healthy else 503)

    async def _scrape(self, request: web.Request) -> web.Response:
        body = await self._metrics.scrape()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
