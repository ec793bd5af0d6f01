"""Past-tense events the engine emits; the bot (and anything else) subscribes to them.

Events are immutable facts. Subscribers must not block: a slow or failing subscriber never
stops trading (``EventBus`` logs and swallows its errors).

The chat notes of an event that reports a booked change (an entry, a close or a part of
one, the daily loss limit) must survive a crash right after the booking. So the bus also
carries the port ``Notes``: the bot registers the pure function that turns an event into its
notes (``EventBus.register_notes``), the engine asks for them (``EventBus.notes_for``) and
stores them in the transaction that books the change, then publishes the event
``noted=True``; the subscriber that owns the notes does not store them a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from trader.models import ClosedTrade, Position, Quote, Signal
from trader.ports import NewMessage
from trader.strategy import Strategy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineStarted:
    mode: str
    at: datetime
    open_positions: int
    trading_enabled: bool
    strategy: Strategy | None = None  # what it trades with, said in the start message


@dataclass(frozen=True, slots=True)
class SignalLogSilent:
    """No row was appended to the signal log for ``minutes``: is the generator running?"""

    last_at: datetime | None  # the newest signal's own time
    minutes: int
    at: datetime


@dataclass(frozen=True, slots=True)
class SignalLogResumed:
    """Rows flow again after a silence."""

    quiet_for: timedelta
    at: datetime


@dataclass(frozen=True, slots=True)
class SignalLogMissing:
    """The signal log is not there at start-up: waiting for it to appear."""

    path: str
    at: datetime


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
    quote: Quote  # the entry it would make, at the market when asked
    asked_at: datetime
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
    noted: bool = False  # its chat notes were stored with the entry (see the module doc)
    # What the order asked for, when the venue filled less (an IOC market order that met
    # its price band): the position is what filled.
    ordered_qty: Decimal | None = None
    # The leverage in force, when the instrument's maximum capped it (the position's is lower).
    leverage_capped_from: int | None = None


@dataclass(frozen=True, slots=True)
class PositionClosed:
    trade: ClosedTrade
    tick_size: Decimal | None = None
    noted: bool = False  # its chat notes were stored with the close
    # A position closed in parts: the net PnL of each part booked before ``trade``, its last.
    earlier: tuple[Decimal, ...] = ()
    at_breakeven: bool = False  # its stop-loss, moved to breakeven after a take-profit

    @property
    def total(self) -> Decimal:
        """The trade's net PnL: the sum of its parts."""
        return sum(self.earlier, self.trade.net_pnl)


@dataclass(frozen=True, slots=True)
class PositionReduced:
    """Part of a position was closed (a close that filled in part, a partial liquidation or
    auto-deleveraging): ``trade`` books that part, ``remaining`` stays open and managed."""

    trade: ClosedTrade
    remaining: Position
    tick_size: Decimal | None = None
    noted: bool = False  # its chat notes were stored with the part's booking
    take_profit: int | None = None  # a take-profit of the plan: its number (TP1 = 1)


@dataclass(frozen=True, slots=True)
class OrderFailed:
    """An order the exchange rejected or that could not be sent; ``reason`` is the venue's."""

    signal_id: str
    symbol: str
    reason: str
    at: datetime
    # A close that failed, or a fill that could not be stored: an open position is at risk,
    # which chat must hear (``/notify`` can silence it, never turn it off).
    at_risk: bool = False


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
    noted: bool = False  # its chat notes were stored with the day's "announced" mark


@dataclass(frozen=True, slots=True)
class DailyProfitTargetReached:
    """Today's realised net profit reached ``daily_profit_target_usdt``: no new entries until
    the next UTC day (open positions keep their plan)."""

    profit: Decimal
    target: Decimal
    at: datetime
    noted: bool = False  # its chat notes were stored with the day's "announced" mark


@dataclass(frozen=True, slots=True)
class DrawdownStopped:
    """Equity fell ``max_drawdown_pct`` below its peak: trading is off (remembered) and the
    open positions are being closed."""

    drawdown_pct: Decimal
    limit_pct: Decimal
    peak: Decimal
    equity: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class VenueBanned:
    """The venue banned this IP (Bybit: HTTP 403): no REST call is made before ``until``;
    SL/TP stay on the exchange. Said once per ban."""

    until: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class VenueBanLifted:
    """A REST call got through again after a ban."""

    at: datetime


@dataclass(frozen=True, slots=True)
class VenueUnreachable:
    """The venue does not answer at start-up: trading waits, and it is asked again."""

    detail: str
    at: datetime
    simulated: bool = False  # paper: SL/TP are simulated here, on prices that do not come


@dataclass(frozen=True, slots=True)
class VenueReachable:
    """The venue answers again after ``VenueUnreachable``: trading starts."""

    at: datetime


@dataclass(frozen=True, slots=True)
class ClockSkewed:
    """This machine's clock differs from the venue's by ``offset_ms`` (the venue's minus
    ours: positive when ours is behind), measured at start-up with a round trip of
    ``round_trip_ms``."""

    offset_ms: int
    round_trip_ms: int
    at: datetime


Event = (
    EngineStarted
    | EngineStopped
    | SignalLogSilent
    | SignalLogResumed
    | SignalLogMissing
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
    | DailyProfitTargetReached
    | DrawdownStopped
    | VenueBanned
    | VenueBanLifted
    | VenueUnreachable
    | VenueReachable
    | ClockSkewed
)

Subscriber = Callable[[Event], Awaitable[None]]
# The port "the notes an event becomes": pure and synchronous, so that the engine can hold
# them before it books the change they report and store both in one transaction.
Notes = Callable[[Event], Sequence[NewMessage]]


def is_noted(event: Event) -> bool:
    """Whether ``event``'s notes were stored with the change it reports."""
    return bool(getattr(event, "noted", False))


class EventBus:
    """Fan-out of engine events to subscribers, in order, isolating their failures."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._notes: Notes | None = None

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def register_notes(self, notes: Notes) -> None:
        """Make ``notes`` the function whose messages are stored with the changes events
        report (the bot's renderer); it replaces any registered before."""
        self._notes = notes

    def notes_for(self, event: Event) -> tuple[NewMessage, ...]:
        """The notes ``event`` becomes, to be stored with the change it reports; none when
        no function is registered. A failing renderer costs the note, never the booking:
        it is logged, and the event then goes out un-noted for subscribers to try again."""
        if self._notes is None:
            return ()
        try:
            return tuple(self._notes(event))
        except Exception:
            log.exception("rendering the notes of %s failed", type(event).__name__)
            return ()

    async def publish(self, event: Event) -> None:
        for subscriber in self._subscribers:
            try:
                await subscriber(event)
            except Exception:  # one failing frontend cannot break trading
                log.exception("event subscriber failed on %s", type(event).__name__)
