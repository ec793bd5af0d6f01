"""The storage the engine needs, declared as protocols; ``storage/`` implements them.

The engine depends on these, never on SQLite. Every method is a short transaction.

A method that books a change the chats are told about takes ``notes``: outbox messages
stored in the same transaction, so that a crash keeps both or neither (the engine gets them
from ``trader.events.EventBus.notes_for``). The storage masks every error text it writes
(``trader.redaction``): no secret reaches the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple, Protocol, TypeVar

from trader.models import ClosedTrade, Fill, InvalidSignal, Position, Side, Signal
from trader.pnl import StatsTally


class FillAlreadyBooked(ValueError):
    """An exit fill whose execution is stored already: booking it again would count it twice."""


class OrderStatus(StrEnum):
    PENDING = "pending"  # recorded before it is sent: a crash leaves a trace
    FILLED = "filled"
    REJECTED = "rejected"
    FAILED = "failed"
    UNKNOWN = "unknown"  # sent, outcome not known yet


@dataclass(frozen=True, slots=True)
class OrderRecord:
    link_id: str
    signal_id: str
    symbol: str
    side: Side
    qty: Decimal
    reduce_only: bool
    status: OrderStatus
    created_at: datetime
    error: str = ""
    exchange_order_id: str = ""


@dataclass(frozen=True, slots=True)
class StoredSignal:
    id: str
    symbol: str
    verdict: str
    timestamp: datetime | None
    seen_at: datetime
    outcome: str | None


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    chat_id: int
    kind: str  # what the bot does with it: "text", "photo", "edit"
    payload: str  # JSON, rendered by the bot
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    silent: bool = False  # sent without sound (Telegram's disable_notification)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A notification to store in the outbox."""

    chat_id: int
    kind: str
    payload: str
    silent: bool = False  # sent without sound (Telegram's disable_notification)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """One trade question of confirmation mode; its status leaves "pending" exactly once."""

    signal_id: str
    ref: str  # short, for the buttons' callback data
    status: str  # "pending", "approved", "declined", "expired"
    created_at: datetime
    expires_at: datetime


class SignalRepository(Protocol):
    async def record_signal(self, signal: Signal | InvalidSignal, seen_at: datetime) -> bool:
        """Store a signal on first sight. False if its id was already known (nothing changes)."""
        ...

    async def record_decided(
        self, decided: Sequence[tuple[Signal | InvalidSignal, str]], seen_at: datetime
    ) -> int:
        """Store signals seen at ``seen_at`` together with the outcome each came to, in one
        transaction; ids already known are left as they are. Returns how many were new."""
        ...

    async def set_outcome(self, signal_id: str, outcome: str, at: datetime) -> None:
        """Store the signal's outcome (``opened``, ``filtered:<reason>``, ...)."""
        ...

    async def get_signal(self, signal_id: str) -> StoredSignal | None: ...

    async def outcomes_since(self, since: datetime) -> dict[str, int]:
        """How many signals first seen at or after ``since`` came to each outcome."""
        ...

    async def recent_signals(self, limit: int) -> Sequence[StoredSignal]:
        """The newest ``limit`` signals by their own time (unparseable rows by when seen),
        newest first, each with its outcome."""
        ...

    async def signals_without_outcome(self) -> Sequence[StoredSignal]:
        """Signals seen but never decided: what a crash interrupted."""
        ...

    async def load_signal(self, signal_id: str) -> Signal | None:
        """The parsed signal as first seen (None for an unknown or invalid one)."""
        ...


class OrderRepository(Protocol):
    async def add_order(self, order: OrderRecord) -> None: ...

    async def add_entry_order(self, signal: Signal, seen_at: datetime, order: OrderRecord) -> bool:
        """In one transaction: ``signal`` on first sight (no outcome yet) and its pending entry
        ``order``. False, and nothing written, if the signal's id was already known."""
        ...

    async def update_order(
        self, link_id: str, status: OrderStatus, *, error: str = "", exchange_order_id: str = ""
    ) -> None: ...

    async def get_order(self, link_id: str) -> OrderRecord | None: ...

    async def orders_with_status(self, *statuses: OrderStatus) -> Sequence[OrderRecord]: ...

    async def count_exit_orders(self, signal_id: str) -> int:
        """How many closing (reduce-only) orders the signal's position has had."""
        ...

    async def add_fill(self, fill: Fill) -> bool:
        """Store an execution; False if its ``exec_id`` (when set) was already stored."""
        ...


class PositionRepository(Protocol):
    async def add_position(
        self, position: Position, *, notes: Sequence[NewMessage] = ()
    ) -> Position:
        """Store an open position (and its ``notes``); returns it with its ``id`` set."""
        ...

    async def record_entry(
        self, position: Position, fill: Fill, at: datetime, *, notes: Sequence[NewMessage] = ()
    ) -> Position:
        """In one transaction: the open position, its entry fill, its order marked filled
        (by the fill's ``link_id``), the signal's outcome ``opened`` and the ``notes``.
        Returns the position with its ``id``."""
        ...

    async def open_positions(self) -> Sequence[Position]: ...

    async def set_stop_and_plan(self, position: Position) -> bool:
        """Store a position's stop-loss and take-profit plan; False if it is not open."""
        ...

    async def reduce_position(
        self,
        position: Position,
        trade: ClosedTrade,
        exit_fill: Fill | None = None,
        *,
        notes: Sequence[NewMessage] = (),
    ) -> ClosedTrade:
        """In one transaction: store ``trade`` (a closed part of the position) and its exit
        fill, the position's remaining size, margin and entry fee, and the ``notes``. Raises
        ``FillAlreadyBooked`` when the exit fill's ``exec_id`` is stored already."""
        ...

    async def close_position(
        self,
        position_id: int,
        trade: ClosedTrade,
        exit_fill: Fill | None = None,
        *,
        notes: Sequence[NewMessage] = (),
    ) -> ClosedTrade:
        """In one transaction: remove the open position, store the closed trade (and the exit
        fill) and the ``notes``. Returns the trade with its ``id`` set. Raises
        ``FillAlreadyBooked`` (and changes nothing) when the exit fill's ``exec_id`` is stored
        already."""
        ...


T = TypeVar("T")


class TradePoint(NamedTuple):
    """A closed trade as far as stats and the equity curve go: its place in close order
    (``closed_at``, then ``id``), its net PnL and its fees; its symbol and open time for the
    per-symbol and holding-time figures. A tuple: a full count makes one per stored trade,
    and a tuple is the cheapest to make."""

    id: int
    closed_at: datetime
    net_pnl: Decimal
    fees: Decimal
    symbol: str = ""
    opened_at: datetime | None = None  # None: not known (not counted in the holding time)
    # False: a part of a position that stayed open; the trade ends at its last part, whose
    # result adds ``earlier`` (its parts before, net) to its own net PnL (``StatsTally.add``).
    ends: bool = True
    earlier: Decimal = Decimal(0)

    @property
    def held(self) -> timedelta | None:
        return None if self.opened_at is None else self.closed_at - self.opened_at

    def counted(self, tally: StatsTally) -> Decimal:
        """Count this trade, or part, in ``tally``; the balance after it."""
        opened = self.opened_at
        held = None if opened is None else self.closed_at - opened
        return tally.add(self.net_pnl, self.fees, held, self.ends, self.earlier)


class TradeRepository(Protocol):
    async def recent_trades(self, limit: int) -> Sequence[ClosedTrade]:
        """The last ``limit`` closed trades, newest first."""
        ...

    async def trades_closed_since(self, since: datetime) -> Sequence[ClosedTrade]:
        """Trades closed at or after ``since``, oldest first."""
        ...

    async def signal_trades(self, signal_id: str) -> Sequence[ClosedTrade]:
        """The trades (the parts of one position) booked for ``signal_id``, oldest first."""
        ...

    async def all_trades(self) -> Sequence[ClosedTrade]:
        """Every closed trade, oldest first, decoded whole: for tools and tests. The reports
        use ``fold_trades`` and read only the trades booked since they last looked."""
        ...

    async def net_pnl_total(self) -> Decimal:
        """Sum of ``net_pnl`` over every closed trade (exact, in Decimal)."""
        ...

    async def fold_trades(self, fold: Callable[[Iterator[TradePoint]], T], after_id: int = 0) -> T:
        """``fold`` over the trades stored after trade ``after_id`` (every trade with 0), in
        close order (ties by id), as ``TradePoint``s read one by one. It can be the whole
        history: ``fold`` runs in a worker thread (pure code only), the trades are never all
        in memory at once, and the engine's writes do not wait for the read."""
        ...


@dataclass(frozen=True, slots=True)
class BalanceMark:
    """The account's balance as the venue reported it just after a closed trade."""

    trade_id: int
    closed_at: datetime
    net_pnl: Decimal  # the trade's
    balance: Decimal


class BalanceMarkRepository(Protocol):
    """Live mode's equity curve: the venue's balance after each close."""

    async def add_balance_mark(self, trade_id: int, balance: Decimal, at: datetime) -> None: ...

    async def fold_balance_marks(self, fold: Callable[[Iterator[BalanceMark]], T]) -> T:
        """``fold`` over every mark, in the close order of their trades (in a worker thread:
        pure code only)."""
        ...


class SettingsRepository(Protocol):
    """Limits and switches changed from chat: they override the strategy file until reset."""

    async def get_setting(self, key: str) -> str | None: ...

    async def set_setting(self, key: str, value: str, *, notes: Sequence[NewMessage] = ()) -> None:
        """Set ``key``; with ``notes``, stored with it (an announcement remembered as made)."""
        ...

    async def delete_setting(self, key: str) -> None: ...

    async def settings_with_prefix(self, prefix: str) -> dict[str, str]: ...


class OutboxRepository(Protocol):
    async def enqueue(self, messages: Sequence[NewMessage], at: datetime) -> list[int]:
        """Store messages in one transaction, in order; returns their ids."""
        ...

    async def next_unsent(self) -> Sequence[OutboxMessage]:
        """The oldest unsent message of each chat (due or not): what each chat reads next."""
        ...

    async def unsent_count(self) -> int:
        """How many messages wait to be sent (the backlog), every chat together."""
        ...

    async def mark_sent(self, message_id: int, at: datetime, *, error: str = "") -> None:
        """Done with a message: sent, or given up on with ``error`` (a permanent refusal)."""
        ...

    async def mark_retry(self, message_id: int, next_attempt_at: datetime, error: str) -> None: ...


class ConfirmationRepository(Protocol):
    async def add_confirmation(self, confirmation: Confirmation) -> None: ...

    async def get_confirmation(self, signal_id: str) -> Confirmation | None: ...

    async def confirmation_by_ref(self, ref: str) -> Confirmation | None: ...

    async def add_confirmation_message(self, signal_id: str, chat_id: int, message_id: int) -> None:
        """Remember a chat message that asks about ``signal_id`` (to edit it later)."""
        ...

    async def confirmation_messages(self, signal_id: str) -> Sequence[tuple[int, int]]:
        """(chat_id, message_id) of every message that asked about ``signal_id``."""
        ...

    async def resolve_confirmation(self, signal_id: str, status: str, at: datetime) -> bool:
        """Move a pending confirmation to ``status``; False if it was no longer pending."""
        ...

    async def pending_confirmations(self) -> Sequence[Confirmation]: ...


class Repositories(
    SignalRepository,
    OrderRepository,
    PositionRepository,
    TradeRepository,
    BalanceMarkRepository,
    SettingsRepository,
    OutboxRepository,
    ConfirmationRepository,
    Protocol,
):
    """Everything the engine and bot store, behind one object."""
