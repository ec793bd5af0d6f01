"""The report: open positions, today's PnL, win rate, trade count and balance, with the
equity curve as a PNG once there are closed trades. On ``/report`` and on a schedule.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot import render
from bot.notes import UTC_ZONE
from bot.notifier import Notifier
from bot.notify_settings import Kind, Mode
from trader.charts import equity_png
from trader.clock import Clock
from trader.engine import Engine


@dataclass(frozen=True, slots=True)
class Report:
    text: str
    chart: bytes | None  # PNG; None until a trade has closed
    caption: str


class Reporter:
    def __init__(
        self, engine: Engine, notifier: Notifier, clock: Clock, zone: ZoneInfo = UTC_ZONE
    ) -> None:
        """``zone``: the trader's time zone (``TIMEZONE``), for the times shown."""
        self._engine = engine
        self._zone = zone
        self._notifier = notifier
        self._clock = clock
        self._since = clock.now()  # the signals a report counts: those seen since the last

    async def build(self) -> Report:
        now = self._clock.now()
        status = await self._engine.status()
        performance = await self._engine.performance()
        outcomes = await self._engine.read_models.signal_outcomes_since(self._since)
        text = render.report_text(status, performance, now, self._zone, outcomes, self._since)
        chart = None
        if performance.curve:
            # Drawing takes tens of milliseconds: off the loop, so trading never waits.
            chart = await asyncio.to_thread(
                equity_png,
                performance.curve,
                starting_balance=performance.curve_start,
                title="Equity, net of fees",
                subtitle=_subtitle(now, performance.stats.trades, self._zone),
                now=now,
                zone=self._zone,
            )
        return Report(text, chart, render.chart_caption(performance))

    async def send_scheduled(self) -> None:
        """The periodic report, through the outbox like every other notification; not even
        built while ``/notify reports off`` (its signal counts then run on to the next)."""
        if self._notifier.notify.mode(Kind.REPORTS) is Mode.OFF:
            return
        report = await self.build()
        self._since = self._clock.now()
        await self._notifier.send_text(report.text, kind=Kind.REPORTS)
        if report.chart is not None:
            await self._notifier.send_photo(report.chart, report.caption, kind=Kind.REPORTS)


def _subtitle(now: datetime, trades: int, zone: ZoneInfo) -> str:
    return f"{render.count(trades, 'closed trade')} · {render.clock(now, zone, '%Y-%m-%d %H:%M')}"
