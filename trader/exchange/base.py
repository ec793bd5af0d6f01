"""The ports the engine uses to reach a venue: ``MarketData`` (public) and ``Exchange`` (trading).

Adapters translate; the engine never sees a venue's own shapes. Listeners are called on the
event loop's thread, never on an adapter's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from trader.events import (
    ClockSkewed,
    VenueBanLifted,
    VenueBanned,
    VenueReachable,
    VenueUnreachable,
)
from trader.models import (
    CloseReason,
    EntryOrder,
    ExitOrder,
    Fill,
    Instrument,
    Position,
    Side,
    TakeProfitLevel,
    Ticker,
    TrailingStop,
)


@dataclass(frozen=True, slots=True)
class PriceUpdated:
    """A new ticker for a watched symbol."""

    ticker: Ticker


@dataclass(frozen=True, slots=True)
class PositionExited:
    """The exchange closed (all or part of) a position by itself: its SL or TP triggered, a
    liquidation, an auto-deleveraging, a delivery, a close by hand; or it vanished."""

    symbol: str
    fill: Fill
    reason: CloseReason
    # True: the position is flat on the venue now, the fill closes all of it. False: the
    # fill took part of it (a partial liquidation, an auto-deleveraging); the rest is open.
    flat: bool = True


@dataclass(frozen=True, slots=True)
class StopLossMissing:
    """The venue says a position we hold has no stop-loss (removed by hand, say)."""

    symbol: str


@dataclass(frozen=True, slots=True)
class TakeProfitCancelled:
    """The venue says a partial take-profit of ours was cancelled by hand (in its app), at
    ``price`` (None: it did not say)."""

    symbol: str
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StreamRestored:
    """The venue's push stream is back after a gap: what happened meanwhile may have been
    missed, so the engine reconciles."""


@dataclass(frozen=True, slots=True)
class VenuePosition:
    """A position as the venue reports it (for reconciliation). ``side`` is None when flat;
    ``stop_loss`` / ``take_profit`` None when the venue holds none."""

    symbol: str
    side: Side | None
    qty: Decimal
    entry_price: Decimal
    leverage: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    opened_at: datetime | None  # when the current position opened; None if the venue says not
    updated_at: datetime | None = None
    # When a position on this symbol was first ever created (Bybit's createdTime): older
    # than ``opened_at`` once the symbol has been traded before; never the open time.
    first_created_at: datetime | None = None
    trailing_stop: Decimal | None = None  # the trailing stop's distance; None: there is none


CONNECTED, RECONNECTING, IDLE = "connected", "reconnecting", "idle"


@dataclass(frozen=True, slots=True)
class StreamHealth:
    """A venue stream as a health check sees it: ``state`` is ``CONNECTED``, ``RECONNECTING``
    (down, being rebuilt) or ``IDLE`` (nothing to carry now; rebuilt once there is), and has
    been so for ``for_seconds``; ``reconnects`` counts its returns after a drop."""

    state: str
    for_seconds: float
    reconnects: int


# Told as they are to the engine, which publishes them: a ban of this IP, its end, and a skew
# of this machine's clock (``trader.events``).
ExchangeEvent = (
    PriceUpdated
    | PositionExited
    | StreamRestored
    | StopLossMissing
    | TakeProfitCancelled
    | VenueBanned
    | VenueBanLifted
    | VenueUnreachable
    | VenueReachable
    | ClockSkewed
)
Listener = Callable[[ExchangeEvent], None]
TickerListener = Callable[[Ticker], None]


class MarketData(Protocol):
    """Public market data of linear perpetuals: no keys needed."""

    async def start(self, listener: TickerListener) -> None:
        """Connect. ``listener`` gets every ticker of every watched symbol, on the loop."""
        ...

    async def stop(self) -> None: ...

    async def load_instruments(self) -> None:
        """Every instrument of the venue's category in one (paged) call, so that
        ``instrument()`` needs no call for any of them. Once loaded, does nothing."""
        ...

    async def instrument(self, symbol: str) -> Instrument:
        """Trading filters of ``symbol`` (cached). Raises ``ExchangeError`` if unknown."""
        ...

    async def ticker(self, symbol: str) -> Ticker:
        """A current ticker: the stream's latest while the stream is healthy and streams
        ``symbol`` (it pushes every change), else one REST call."""
        ...

    async def watch(self, symbol: str) -> None:
        """Stream ``symbol``'s tickers to the listener from now on (idempotent; no call
        once ``symbol`` is streamed)."""
        ...

    async def wait_streamed(self, symbols: Collection[str], timeout: float) -> bool:  # noqa: ASYNC109
        """Wait, ``timeout`` seconds at most, until the stream carries every one of
        ``symbols`` (their tickers need no call from then on); whether it does."""
        ...

    def stream_health(self) -> StreamHealth:
        """The ticker stream's state, for health checks."""
        ...


class Exchange(Protocol):
    """Trading on one venue, paper or live. Only the engine talks to it."""

    mode: str  # "paper" or "live"

    async def start(self, listener: Listener) -> None: ...

    @property
    def clock_skew_ms(self) -> int | None:
        """The venue's clock minus ours in ms, as last measured; None if never (paper)."""
        ...

    def streams(self) -> dict[str, StreamHealth]:
        """Each stream this venue depends on, by name ("public", "private"), for health
        checks: all of them are needed."""
        ...

    async def stop(self) -> None: ...

    async def adopt(self, positions: Sequence[Position]) -> None:
        """Take over positions the database says are open (after a restart)."""
        ...

    async def instrument(self, symbol: str) -> Instrument: ...

    async def ticker(self, symbol: str) -> Ticker: ...

    async def set_leverage(self, symbol: str, leverage: int) -> None: ...

    async def prepare(self, symbols: Sequence[str], leverage: int) -> None:
        """Make ``symbols`` ready to trade at ``leverage`` before any signal for them: every
        instrument loaded, ``symbols``' leverage set, position mode checked (one-way) and
        tickers streamed, so that their entries send the order first. At start-up and when
        the leverage changes. Never raises: what could not be done is logged, and done at the
        symbol's next entry instead."""
        ...

    async def prepare_entry(self, symbol: str, leverage: int) -> Ticker:
        """Ready ``symbol`` for an entry at ``leverage`` now, and return its current ticker.
        After ``prepare()`` this calls nothing on the venue; otherwise only what is missing,
        concurrently. Raises ``NotTradable`` (the venue would not trade it as we must: a
        hedge-mode symbol it refuses to switch) or ``ExchangeError``."""
        ...

    async def set_stop_loss(self, symbol: str, price: Decimal) -> None:
        """Put the position's stop-loss (all of it) at ``price`` on the venue."""
        ...

    async def set_trailing_stop(self, symbol: str, trailing: TrailingStop) -> None:
        """Put a trailing stop on the position (all of it): it closes it at the market once
        the price, after reaching ``trailing.active_price``, comes back by its distance."""
        ...

    async def set_take_profit(self, symbol: str, price: Decimal, qty: Decimal) -> None:
        """Add a partial take-profit to the position: it closes ``qty`` of it at the market
        once the price reaches ``price`` (one of several; the stop-loss covers the rest)."""
        ...

    async def take_profit_orders(self, symbol: str) -> list[TakeProfitLevel]:
        """The partial take-profits the venue holds for ``symbol``'s position, not filled
        yet, in price order (for an entry recovered after a crash)."""
        ...

    async def open(self, order: EntryOrder) -> Fill:
        """A market order with SL/TP attached. Raises ``OrderRejected`` / ``ExchangeError``."""
        ...

    async def close(self, order: ExitOrder) -> Fill:
        """A reduce-only market order for the whole position."""
        ...

    async def balance(self) -> Decimal:
        """Wallet balance in USDT (realised, net of fees)."""
        ...

    async def positions(self) -> list[VenuePosition]:
        """Every open position the venue holds (for reconciliation)."""
        ...

    async def find_order(self, link_id: str) -> Fill | None:
        """The fill of the order sent as ``link_id``, or None if the venue has no such order
        or it filled nothing (a restart lost track of it). Raises ``ExchangeError`` when the
        venue cannot be asked."""
        ...

    async def exits_since(self, symbol: str, since: datetime) -> list[tuple[Fill, CloseReason]]:
        """Every fill that closed (all or part of) ``symbol``'s position after ``since``,
        oldest first, each with why (SL, TP, liquidation, ADL, delivery, by hand); empty if
        the venue shows none."""
        ...
