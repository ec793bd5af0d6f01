"""Signal intake: each row's first decision (filtered, rejected, asked about or entered), the
backlog decided in bulk, and the trader's answer to a confirmation question checked again.

The entry itself is ``Entries``'s; this is the gate in front of it, where the slot is taken.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from trader import rules, sizing
from trader.coins import Coins
from trader.confirmation import Confirmations, Decision, Verdict
from trader.entries import Entries
from trader.events import SignalSkipped
from trader.models import InvalidSignal, Signal
from trader.parts import Parts
from trader.signal_watch import SignalWatch

log = logging.getLogger(__name__)


class SignalIntake:
    """Decides the rows the feed hands in, and the answers the trader gives."""

    def __init__(
        self,
        parts: Parts,
        *,
        entries: Entries,
        confirmations: Confirmations,
        coins: Coins,
        signal_watch: SignalWatch,
    ) -> None:
        self._book, self._repo, self._clock = parts.book, parts.repo, parts.clock
        self._bus, self._strategy, self._tasks = parts.bus, parts.strategy, parts.tasks
        self._entries = entries
        self._confirmations = confirmations
        self._coins = coins
        self._signal_watch = signal_watch

    async def handle_record(self, record: Signal | InvalidSignal) -> None:
        """First sight of a row: decide it, and store it once, with its first decision.

        The entry itself runs as a task so a slow venue never holds up the next signal; the
        risk check and the slot it reserves happen here, with no await in between. An entry
        stores its signal with its pending order in one transaction, just before the order.
        """
        if self._entries.unsettled(record.id):
            return  # the same row read again while its entry is under way
        now = self._clock.now()
        await self._signal_watch.heard(record, now)
        if isinstance(record, InvalidSignal):
            outcome = f"invalid:{record.reason}"
            if await self._repo.record_decided([(record, outcome)], now):
                log.warning("invalid signal row %s: %s", record.id, record.reason)
                await self._bus.publish(SignalSkipped(record.id, "", outcome, now))
            return  # else acted on already (this run or a previous one)
        signal = record
        reason = rules.screen(
            signal,
            now=now,
            strategy=self._strategy,
            limits=self._book.limits,
            open_symbols=self._book.held_symbols(),
            coins=self._coins.lists,
            cooling=self._book.cooling(),
        )
        if reason is not None:
            await self._entries.skip(signal, f"filtered:{reason}", seen_at=now)
            return
        await self._book.refresh_day()
        margin = sizing.entry_margin(self._strategy, self._book.limits)
        reason = rules.risk_reason(margin, self._book.risk_state(), self._book.limits)
        if reason is not None:
            await self._entries.skip(signal, f"rejected:{reason}", seen_at=now)
            return
        if self._tasks.stopping:
            return  # not stored: read again, and decided anew, at the next start
        if self._confirmations.enabled:
            # The question carries the entry's figures, which may take a call to the venue:
            # a task, like an entry. Risk is checked again at the press; asking about a trade
            # that cannot be made now would only be noise.
            self._entries.begin(signal.id)
            question = self._entries.ask(signal, margin, now, self._confirmations.ask)
            self._tasks.spawn(question, f"ask-{signal.symbol}")
            return
        if signal.symbol in self._book.held_symbols():
            # Taken while we awaited (the backlog and the follower both hand rows in):
            # one position per symbol.
            await self._entries.skip(signal, "filtered:already_open", seen_at=now)
            return
        self._book.in_flight[signal.symbol] = signal.id  # the slot is taken before any await
        self._entries.begin(signal.id)
        entry = self._entries.enter(signal, margin, seen_at=now)
        self._tasks.spawn(entry, f"enter-{signal.symbol}")

    async def record_backlog(self, records: Sequence[Signal | InvalidSignal]) -> Counter[str]:
        """Rows that were in the log before we followed it: those decided on sight are stored
        in one transaction with no event each (a year of log is 300k of them); the others are
        handled like appended rows. Returns the outcomes given, ``"handled"`` for the others."""
        now = self._clock.now()
        decided: list[tuple[Signal | InvalidSignal, str]] = []
        fresh: list[Signal] = []
        for record in records:
            self._signal_watch.written(record)
            if self._entries.unsettled(record.id):
                continue  # being entered as an appended row: stored with its order
            outcome = rules.outcome_on_sight(record, now, self._strategy)
            if outcome is not None:
                decided.append((record, outcome))
            else:
                assert isinstance(record, Signal)
                fresh.append(record)
        await self._repo.record_decided(decided, now)
        tally = Counter(outcome for _, outcome in decided)
        for signal in fresh:
            await self.handle_record(signal)
        tally["handled"] += len(fresh)
        return tally

    async def decide(
        self, ref: str, approve: bool, origin: tuple[int, int] | None = None
    ) -> Decision:
        """The trader's answer to a confirmation question (``ref``), asked in the message
        ``origin`` (chat id, message id). An approval runs the risk checks now."""
        if self._tasks.stopping:
            return Decision(Verdict.UNAVAILABLE)
        decision, signal = await self._confirmations.resolve(ref, approve, origin)
        if signal is None:
            return decision
        await self._book.refresh_day()
        limits = self._book.limits
        margin = sizing.entry_margin(self._strategy, limits)
        reason = rules.coin_reason(signal.symbol, self._coins.lists)  # edited since the question?
        quoted = self._confirmations.quoted(signal.id)
        if reason is None and quoted is not None and quoted != (margin, limits.leverage):
            reason = "limits_changed"  # approved at other figures than these
        if reason is None and signal.symbol in self._book.held_symbols():
            reason = "already_open"
        if reason is None and signal.symbol in self._book.cooling():
            reason = "cooldown"  # a loss on it since the question
        reason = reason or rules.risk_reason(margin, self._book.risk_state(), limits)
        if reason is None and self._tasks.stopping:
            reason = "shutting_down"
        if reason is not None:
            await self._confirmations.announce(signal.id, signal, "approved", f"rejected:{reason}")
            await self._entries.skip(signal, f"rejected:{reason}")
            return Decision(Verdict.REJECTED, signal.symbol, reason)
        self._book.in_flight[signal.symbol] = signal.id  # no await since the check above
        self._tasks.spawn(self._entries.enter(signal, margin), f"enter-{signal.symbol}")
        await self._confirmations.announce(signal.id, signal, "approved")
        return decision
