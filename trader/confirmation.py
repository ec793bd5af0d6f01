"""Confirmation mode: a signal that passed the filters waits for the trader's ✅ or ❌.

Each question is stored, resolved exactly once (press, skip or timeout race through one
compare-and-set), and survives a restart; the engine trades an approved one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from trader import rules
from trader.clock import Clock
from trader.events import ConfirmationRequested, ConfirmationResolved, EventBus, SignalSkipped
from trader.models import Quote, Signal
from trader.ports import Confirmation, Repositories
from trader.strategy import Strategy

log = logging.getLogger(__name__)

CONFIRM_MODE_KEY = "confirm_mode"


class Verdict(StrEnum):
    """What a button press came to."""

    OPENING = "opening"  # approved; the entry is on its way
    DECLINED = "declined"
    REJECTED = "rejected"  # approved, but the risk check at the press said no
    EXPIRED = "expired"  # pressed after the deadline
    ALREADY_DECIDED = "already_decided"  # a second press
    UNKNOWN = "unknown"  # no such question, or not asked in this message
    UNAVAILABLE = "unavailable"  # the engine is shutting down


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    symbol: str = ""
    detail: str = ""  # the risk reason, or the status it already had


def confirmation_ref(signal_id: str) -> str:
    """A short, fixed-size reference for the buttons: Telegram's callback data is ≤ 64 bytes,
    and a signal id can be anything the generator writes."""
    return hashlib.sha1(signal_id.encode("utf-8")).hexdigest()[:20]


def confirmation_deadline(signal: Signal, now: datetime, strategy: Strategy) -> datetime:
    """``confirm_timeout_seconds`` from now, or the signal's TTL if that ends sooner."""
    timeout = now + timedelta(seconds=strategy.confirm_timeout_seconds)
    return min(timeout, signal.timestamp + rules.signal_ttl(signal, strategy))


class Confirmations:
    """The questions of confirmation mode; the engine owns one."""

    def __init__(
        self, *, repo: Repositories, clock: Clock, bus: EventBus, strategy: Strategy
    ) -> None:
        self._repo = repo
        self._clock = clock
        self._bus = bus
        self._strategy = strategy
        self._deadlines: dict[str, datetime] = {}  # signal id → expiry, of pending questions
        # Signal id → (margin, leverage) the question showed: an approval trades those or
        # nothing. Kept in memory: a question from before a restart is traded at the limits
        # in force at the press.
        self._quoted: dict[str, tuple[Decimal, int]] = {}
        self.enabled = False

    async def load(self) -> None:
        self.enabled = await self._repo.get_setting(CONFIRM_MODE_KEY) == "1"
        pending = await self._repo.pending_confirmations()
        self._deadlines = {c.signal_id: c.expires_at for c in pending}

    def is_pending(self, signal_id: str) -> bool:
        return signal_id in self._deadlines

    async def set_enabled(self, enabled: bool) -> None:
        await self._repo.set_setting(CONFIRM_MODE_KEY, "1" if enabled else "0")
        self.enabled = enabled

    async def ask(self, signal: Signal, quote: Quote) -> None:
        """Put the question about ``signal``, with the entry it would make now (``quote``)."""
        now = self._clock.now()
        expires_at = confirmation_deadline(signal, now, self._strategy)
        ref = confirmation_ref(signal.id)
        await self._repo.add_confirmation(
            Confirmation(
                signal_id=signal.id,
                ref=ref,
                status="pending",
                created_at=now,
                expires_at=expires_at,
            )
        )
        self._deadlines[signal.id] = expires_at
        self._quoted[signal.id] = (quote.asked_margin, quote.asked_leverage)
        await self._bus.publish(ConfirmationRequested(signal, quote, now, expires_at, ref))

    async def resolve(
        self, ref: str, approve: bool, origin: tuple[int, int] | None = None
    ) -> tuple[Decision, Signal | None]:
        """Record the trader's answer. Returns the signal to trade only for an approval that
        won the race; ``origin`` (chat id, message id) must be one of the question's messages."""
        confirmation = await self._repo.confirmation_by_ref(ref)
        if confirmation is None:
            return Decision(Verdict.UNKNOWN), None
        signal = await self._repo.load_signal(confirmation.signal_id)
        symbol = signal.symbol if signal else ""
        if origin is not None and origin not in await self._repo.confirmation_messages(
            confirmation.signal_id
        ):
            return Decision(Verdict.UNKNOWN, symbol), None
        if confirmation.status != "pending":
            return Decision(Verdict.ALREADY_DECIDED, symbol, confirmation.status), None
        if self._clock.now() >= confirmation.expires_at:
            await self._expire(confirmation.signal_id, signal)
            return Decision(Verdict.EXPIRED, symbol), None
        status = "approved" if approve else "declined"
        if not await self._repo.resolve_confirmation(
            confirmation.signal_id, status, self._clock.now()
        ):
            latest = await self._repo.get_confirmation(confirmation.signal_id)
            detail = latest.status if latest else ""
            return Decision(Verdict.ALREADY_DECIDED, symbol, detail), None
        self._deadlines.pop(confirmation.signal_id, None)
        if not approve:
            await self.announce(confirmation.signal_id, signal, "declined")
            await self._set_outcome(confirmation.signal_id, symbol, "declined")
            return Decision(Verdict.DECLINED, symbol), None
        if signal is None:  # pragma: no cover - a question is only asked about a valid signal
            log.error("approved signal %s is not stored", confirmation.signal_id)
            return Decision(Verdict.UNKNOWN, symbol), None
        # The caller announces the approval once it knows whether the trade goes ahead.
        return Decision(Verdict.OPENING, symbol), signal

    def quoted(self, signal_id: str) -> tuple[Decimal, int] | None:
        """The margin and leverage the question about ``signal_id`` showed, if known."""
        return self._quoted.pop(signal_id, None)

    async def announce(
        self, signal_id: str, signal: Signal | None, status: str, detail: str = ""
    ) -> None:
        symbol = signal.symbol if signal else ""
        await self._bus.publish(
            ConfirmationResolved(signal_id, symbol, status, self._clock.now(), signal, detail)
        )

    async def expire_due(self) -> None:
        """Record ``expired`` for every question whose deadline has passed."""
        now = self._clock.now()
        for signal_id in [s for s, at in self._deadlines.items() if now >= at]:
            await self._expire(signal_id, await self._repo.load_signal(signal_id))

    async def _expire(self, signal_id: str, signal: Signal | None) -> None:
        self._deadlines.pop(signal_id, None)
        if not await self._repo.resolve_confirmation(signal_id, "expired", self._clock.now()):
            return  # a press got there first
        await self.announce(signal_id, signal, "expired")
        await self._set_outcome(signal_id, signal.symbol if signal else "", "expired")

    async def _set_outcome(self, signal_id: str, symbol: str, outcome: str) -> None:
        now = self._clock.now()
        await self._repo.set_outcome(signal_id, outcome, now)
        await self._bus.publish(SignalSkipped(signal_id, symbol, outcome, now))
