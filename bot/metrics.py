"""Prometheus metrics of one process, in a registry of its own: counters fed by the engine's
events (signals by outcome, signal → order latency), and the state read at each scrape
(positions, closed trades, net PnL, outbox backlog, the streams and their reconnects).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trader.engine import Engine
from trader.events import (
    ConfirmationResolved,
    Event,
    EventBus,
    OrderFailed,
    PositionOpened,
    SignalSkipped,
)
from trader.exchange.base import CONNECTED

if TYPE_CHECKING:
    from bot.health import Health, HealthReport

log = logging.getLogger(__name__)

# Seconds from a signal's first sight (or the trader's approval, in confirmation mode) to its
# position: milliseconds on a quiet loopback, seconds when the venue is slow or retried.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def outcome_label(outcome: str) -> str:
    """A signal's outcome as a label: ``failed:<the venue's words>`` is just ``failed`` (free
    text would make a series per error); the other reasons are short codes, kept."""
    kind, _, _ = outcome.partition(":")
    return kind if kind == "failed" else outcome


@dataclass(frozen=True, slots=True)
class _Scrape:
    """The state read for one scrape."""

    health: HealthReport
    open_positions: int
    closed_trades: int
    net_pnl: float


class Metrics:
    """The process's metrics; ``attach`` it to the engine's bus, ``scrape`` for the text."""

    def __init__(self, engine: Engine, health: Health) -> None:
        self._engine = engine
        self._health = health
        self.registry = CollectorRegistry()
        self._signals = Counter(
            "trader_signals",
            "Signals decided since the process started, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "trader_signal_to_order_seconds",
            "From a signal's first sight (its approval, in confirmation mode) to its position",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._latest: _Scrape | None = None
        self.registry.register(_StateCollector(self))
        self._since = engine.clock.now()  # signals seen before were entered by another run
        self._approved_at: dict[str, datetime] = {}

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(self.on_event)

    @property
    def latest(self) -> _Scrape | None:
        """The state read by the last scrape."""
        return self._latest

    async def scrape(self) -> bytes:
        """The Prometheus text, with the state read now."""
        stats = await self._engine.stats()
        self._latest = _Scrape(
            health=await self._health.report(),
            open_positions=len(self._engine.open_positions()),
            closed_trades=stats.trades,
            net_pnl=float(stats.net_pnl),  # Prometheus samples are floats
        )
        return generate_latest(self.registry)

    async def on_event(self, event: Event) -> None:
        if isinstance(event, SignalSkipped):
            self._signals.labels(outcome_label(event.outcome)).inc()
        elif isinstance(event, ConfirmationResolved) and event.status == "approved":
            self._approved_at[event.signal_id] = event.at
        elif isinstance(event, PositionOpened):
            await self._opened(event)
        elif isinstance(event, OrderFailed):
            # An exit's failure is an OrderFailed too: only an entry's gives its signal
            # the outcome failed.
            stored = await self._engine.repo.get_signal(event.signal_id)
            if stored is not None and (stored.outcome or "").startswith("failed"):
                self._signals.labels("failed").inc()
                self._approved_at.pop(event.signal_id, None)

    async def _opened(self, event: PositionOpened) -> None:
        signal_id = event.position.signal_id
        approved = self._approved_at.pop(signal_id, None)
        stored = await self._engine.repo.get_signal(signal_id)
        if stored is None:  # a position the bot did not open: no signal of ours
            return
        self._signals.labels("opened").inc()
        start = approved or stored.seen_at
        if start >= self._since:
            self._latency.observe(max((event.at - start).total_seconds(), 0.0))


class _StateCollector(Collector):
    """The state of the last scrape, as Prometheus metric families."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        latest = self._metrics.latest
        if latest is None:
            return
        health = latest.health
        yield _gauge("trader_engine_running", "1 while the engine runs", health.running)
        yield _gauge("trader_trading_enabled", "1 while new signals are taken", health.trading)
        yield _gauge("trader_open_positions", "Positions open now", latest.open_positions)
        closed = CounterMetricFamily("trader_closed_trades", "Trades closed, ever")
        closed.add_metric([], latest.closed_trades)
        yield closed
        yield _gauge("trader_net_pnl_usdt", "Net PnL of every closed trade, USDT", latest.net_pnl)
        backlog = health.outbox_backlog
        yield _gauge("trader_outbox_backlog", "Chat messages waiting to be sent", backlog)
        connected = GaugeMetricFamily(
            "trader_stream_connected", "1 while the stream is connected", labels=["stream"]
        )
        reconnects = CounterMetricFamily(
            "trader_stream_reconnects",
            "Times the stream came back after a drop, since the process started",
            labels=["stream"],
        )
        for name, stream in health.streams.items():
            connected.add_metric([name], float(stream.state == CONNECTED))
            reconnects.add_metric([name], stream.reconnects)
        yield connected
        yield reconnects
        if health.clock_skew_ms is not None:
            yield _gauge(
                "trader_clock_skew_seconds",
                "The venue's clock minus ours, as measured at start-up",
                health.clock_skew_ms / 1000,
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))
