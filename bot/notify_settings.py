"""Which notifications the chats get, and how: each kind on, silent (no sound) or off.

The one table from engine events to the kinds the trader sets with ``/notify``, and the modes
in force: loaded from the database at start, changed by the command, and read synchronously
by the notifier, which renders an entry's or a close's notes inside the engine's transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from trader.events import (
    ClockSkewed,
    ConfirmationRequested,
    ConfirmationResolved,
    DailyLossLimitReached,
    DailyProfitTargetReached,
    DrawdownStopped,
    EngineStarted,
    EngineStopped,
    Event,
    OrderFailed,
    PositionClosed,
    PositionOpened,
    PositionReduced,
    Reconciled,
    SignalLogMissing,
    SignalLogResumed,
    SignalLogSilent,
    SignalSkipped,
    TradingToggled,
    VenueBanLifted,
    VenueBanned,
    VenueReachable,
    VenueUnreachable,
)
from trader.models import CloseReason
from trader.ports import NewMessage, SettingsRepository
from trader.rules import echo

SETTING_PREFIX = "notify."


class Mode(StrEnum):
    ON = "on"
    SILENT = "silent"  # sent without sound: Telegram's disable_notification
    OFF = "off"


class Kind(StrEnum):
    """What the trader names in ``/notify EVENT MODE``, in the order ``/notify`` lists them."""

    OPENED = "opened"
    CLOSED = "closed"  # closed, or partly closed
    REJECTED = "rejected"  # risk refusals and failed orders
    SKIPPED = "skipped"  # filtered, stale and invalid signals
    REPORTS = "reports"  # the periodic report and its chart
    SAFETY = "safety"  # what the trader must learn of: silenced at most, never off


DEFAULTS: Mapping[Kind, Mode] = {
    Kind.OPENED: Mode.ON,
    Kind.CLOSED: Mode.ON,
    Kind.REJECTED: Mode.ON,
    Kind.SKIPPED: Mode.OFF,  # every filtered row would be a message: asked for, not imposed
    Kind.REPORTS: Mode.ON,
    Kind.SAFETY: Mode.ON,
}
NEVER_OFF = frozenset({Kind.SAFETY})

KIND_OF_EVENT: Mapping[type, Kind] = {
    PositionOpened: Kind.OPENED,
    PositionClosed: Kind.CLOSED,
    PositionReduced: Kind.CLOSED,
    OrderFailed: Kind.REJECTED,
    DailyLossLimitReached: Kind.SAFETY,
    DailyProfitTargetReached: Kind.SAFETY,
    DrawdownStopped: Kind.SAFETY,
    Reconciled: Kind.SAFETY,  # reconciliation findings, a missing stop-loss among them
    EngineStarted: Kind.SAFETY,
    EngineStopped: Kind.SAFETY,
    VenueBanned: Kind.SAFETY,
    VenueBanLifted: Kind.SAFETY,
    VenueUnreachable: Kind.SAFETY,
    VenueReachable: Kind.SAFETY,
    ClockSkewed: Kind.SAFETY,
    SignalLogSilent: Kind.SAFETY,
    SignalLogResumed: Kind.SAFETY,
    SignalLogMissing: Kind.SAFETY,
}
# A skipped signal's kind follows its outcome ("filtered:stale" → skipped); "declined" and
# "expired" are said by editing the confirmation question, not by a note.
KIND_OF_OUTCOME: Mapping[str, Kind] = {
    "rejected": Kind.REJECTED,
    "filtered": Kind.SKIPPED,
    "invalid": Kind.SKIPPED,
}
# Exits Bybit made itself, or a hand on Bybit: the trader must hear of them (never off).
VENUE_MADE = frozenset(
    {CloseReason.LIQUIDATION, CloseReason.ADL, CloseReason.DELIVERY, CloseReason.EXTERNAL}
)
# Not the trader's to set: a confirmation question waits for an answer (it and its edit go
# out as they are), and a trading switch is answered by the command that made it.
UNSET_EVENTS = frozenset({ConfirmationRequested, ConfirmationResolved, TradingToggled})


def kind_of(event: Event) -> Kind | None:
    """The kind ``/notify`` sets for ``event``; None when its notes always go out."""
    if isinstance(event, SignalSkipped):
        return KIND_OF_OUTCOME.get(event.outcome.partition(":")[0])
    if isinstance(event, OrderFailed) and event.at_risk:
        return Kind.SAFETY  # a failed close: a position may be left unmanaged
    if isinstance(event, PositionClosed | PositionReduced) and event.trade.reason in VENUE_MADE:
        return Kind.SAFETY  # a liquidation, say: always named in chat
    return KIND_OF_EVENT.get(type(event))


@dataclass(frozen=True, slots=True)
class Change:
    kind: Kind
    before: Mode
    after: Mode


def parse_change(event_word: str, mode_word: str) -> tuple[Kind, Mode]:
    """``/notify EVENT MODE`` as typed (any case); ``ValueError`` says what is wrong."""
    try:
        kind = Kind(event_word.strip().lower())
    except ValueError:
        names = ", ".join(Kind)
        raise ValueError(f"unknown event {echo(event_word)}; one of: {names}") from None
    try:
        mode = Mode(mode_word.strip().lower())
    except ValueError:
        raise ValueError(f"{kind} needs on, silent or off, got {echo(mode_word)}") from None
    if mode is Mode.OFF and kind in NEVER_OFF:
        raise ValueError(
            f"{kind} messages can be silenced but never turned off (send /notify {kind} silent)"
        )
    return kind, mode


class NotifySettings:
    """The mode of each kind, in memory for the notifier, stored for the next start."""

    def __init__(self, repo: SettingsRepository, modes: Mapping[Kind, Mode] | None = None) -> None:
        self._repo = repo
        self._modes = {**DEFAULTS, **(modes or {})}
        self._changing = asyncio.Lock()

    @classmethod
    async def load(cls, repo: SettingsRepository) -> NotifySettings:
        """The stored modes over the defaults; a stored value that no longer parses (or an
        "off" for a kind that may not be off) is ignored."""
        stored = await repo.settings_with_prefix(SETTING_PREFIX)
        modes: dict[Kind, Mode] = {}
        for key, value in stored.items():
            try:
                kind, mode = parse_change(key.removeprefix(SETTING_PREFIX), value)
            except ValueError:
                continue
            modes[kind] = mode
        return cls(repo, modes)

    def modes(self) -> dict[Kind, Mode]:
        """Every kind's mode, in ``/notify``'s order."""
        return {kind: self._modes[kind] for kind in Kind}

    def mode(self, kind: Kind | None) -> Mode:
        return Mode.ON if kind is None else self._modes[kind]

    def mode_for(self, event: Event) -> Mode:
        return self.mode(kind_of(event))

    async def set(self, event_word: str, mode_word: str) -> Change:
        """Set one kind's mode from chat: stored, then in force. ``ValueError`` with a clear
        message changes nothing."""
        kind, mode = parse_change(event_word, mode_word)
        async with self._changing:
            before = self._modes[kind]
            await self._repo.set_setting(SETTING_PREFIX + kind, mode)
            self._modes[kind] = mode
        return Change(kind, before, mode)


def in_mode(messages: list[NewMessage], mode: Mode) -> list[NewMessage]:
    """``messages`` as ``mode`` sends them: silent ones are stored as such, so that a restart
    in between sends them as they were meant."""
    return [replace(m, silent=True) for m in messages] if mode is Mode.SILENT else messages
