"""Past-tense events the engine emits; the bot (and anything else) subscribes to them.

Events are immutable facts. Subscribers must not block: a slow or failing subscriber never
stops trading (``EventBus`` logs and swallows its errors).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trader.models import ClosedTrade, Position, Signal

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineStarted:
    mode: str
    at: datetime
    open_positions: int
    trading_enabled: bool


@dataclass(frozen=True, slots=True)
class EngineStopped:
    at: datetime


@dataclass(frozen=True, slots=True)
class TradingToggled:
    enabled: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class SignalSkipped:
    """A signal that will not be traded: filtered, rejected by risk, invalid, declined, expired."""

    signal_id: str
    symbol: str
    outcome: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ConfirmationRequested:
    """Confirmation mode: the trader is asked before ``signal`` is traded."""

    signal: Signal
    margin: Decimal
    leverage: int
    expires_at: datetime
    ref: str  # what the answer quotes back (``Engine.decide``)


@dataclass(frozen=True, slots=True)
class ConfirmationResolved:
    """A question of confirmation mode was answered ("approved", "declined") or "expired"."""

    signal_id: str
    symbol: str
    status: str
    at: datetime
    signal: Signal | None = None
    detail: str = ""  # for an approval the risk check refused: "rejected:<reason>"


@dataclass(frozen=True, slots=True)
class PositionOpened:
    position: Position
    at: datetime
    tick_size: Decimal | None = None  # for showing prices as the venue quotes them


@dataclass(frozen=True, slots=True)
class PositionClosed:
    trade: ClosedTrade
    tick_size: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PositionReduced:
    """Part of a position was closed (a close that filled in part, a partial liquidation or
    auto-deleveraging): ``trade`` books that part, ``remaining`` stays open and managed."""

    trade: ClosedTrade
    remaining: Position
    tick_size: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderFailed:
    """An order the exchange rejected or that could not be sent; ``reason`` is the venue's."""

    signal_id: str
    symbol: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Reconciled:
    """The venue and the database disagreed, at start-up or after the venue's stream came back
    from a gap; ``findings`` says what differed and what was done, one line each."""

    trigger: str
    findings: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class DailyLossLimitReached:
    loss: Decimal
    limit: Decimal
    at: datetime


Event = (
    EngineStarted
    | EngineStopped
    | TradingToggled
    | SignalSkipped
    | ConfirmationRequested
    | ConfirmationResolved
    | PositionOpened
    | PositionClosed
    | PositionReduced
    | OrderFailed
    | Reconciled
    | DailyLossLimitReached
)

Subscriber = Callable[[Event], Awaitable[None]]


class EventBus:
    """Fan-out of engine events to subscribers, in order, isolating their failures."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def publish(self, event: Event) -> None:
        for subscriber in self._subscribers:
            try:
                await subscriber(event)
            except Exception:  # one failing frontend cannot break trading
                log.exception("event subscriber failed on %s", type(event).__name__)
