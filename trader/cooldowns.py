"""Cooldown after a loss (``cooldown_minutes_after_loss``, ``/limits cooldown``): after a
losing close on a symbol, its signals are filtered ``cooldown`` for that long. The engine's
book and replay keep one each; ``rules.screen`` reads which symbols are cooling."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

LONGEST = timedelta(days=7)  # the longest cooldown a trader may set (10,080 minutes)


class Cooldowns:
    def __init__(self) -> None:
        self._last_loss: dict[str, datetime] = {}  # symbol → its latest losing close

    def record(self, symbol: str, closed_at: datetime, net_pnl: Decimal) -> None:
        """A close (or a part of one) booked on ``symbol``; only a loss starts a cooldown."""
        if net_pnl < 0 and closed_at > self._last_loss.get(symbol, closed_at - LONGEST):
            self._last_loss[symbol] = closed_at

    def cooling(self, now: datetime, minutes: int | None) -> frozenset[str]:
        """The symbols whose last loss is less than ``minutes`` old (None: the guard is off)."""
        if minutes is None:
            return frozenset()
        span = timedelta(minutes=minutes)
        return frozenset(s for s, at in self._last_loss.items() if now - at < span)
