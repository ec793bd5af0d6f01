"""What the chats are told about each engine event: rendered, split at Telegram's limit, one
message per allowed chat, and on, silent or not at all as ``/notify`` has it.

Pure and synchronous, so that the engine can store a change's notes in the very transaction
that books the change (``trader.events.Notes``); ``bot.notifier`` delivers them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from bot import render
from bot.callbacks import OPEN, SKIP, TradeDecision
from bot.notify_settings import Kind, Mode, NotifySettings, in_mode
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
    VenueBanLifted,
    VenueBanned,
    VenueReachable,
    VenueUnreachable,
)
from trader.ports import NewMessage

TEXT, PHOTO, EDIT = "text", "photo", "edit"  # the outbox's kinds of message
UTC_ZONE = ZoneInfo("UTC")
# Risk rejections that would repeat for every signal: said once elsewhere, or by design.
QUIET_REJECTIONS = frozenset({"trading_disabled", "daily_loss_limit", "daily_profit_target"})


class Notes:
    def __init__(
        self, chat_ids: Sequence[int], notify: NotifySettings, zone: ZoneInfo = UTC_ZONE
    ) -> None:
        """``zone``: the trader's time zone (``TIMEZONE``), for the times in notes.
        ``notify``: which notifications go out, and how (``/notify``)."""
        self.notify = notify
        self._chat_ids = list(dict.fromkeys(chat_ids))
        self._zone = zone

    def __call__(self, event: Event) -> list[NewMessage]:
        """What the chats are told about ``event``, on, silent or not at all as ``/notify``
        has it."""
        mode = self.notify.mode_for(event)
        return [] if mode is Mode.OFF else in_mode(self._render(event), mode)

    def text(
        self,
        text: str,
        *,
        buttons: list[list[list[str]]] | None = None,
        confirm: str | None = None,
        kind: Kind = Kind.SAFETY,
    ) -> list[NewMessage]:
        """``text`` for every allowed chat, split at Telegram's limit, the buttons on the last
        part; ``kind``: what ``/notify`` calls it."""
        mode = self.notify.mode(kind)
        if mode is Mode.OFF:
            return []
        return in_mode(self._texts(text, buttons=buttons, confirm=confirm), mode)

    def photo(self, png: bytes, caption: str, *, kind: Kind = Kind.SAFETY) -> list[NewMessage]:
        mode = self.notify.mode(kind)
        if mode is Mode.OFF:
            return []
        payload = json.dumps(
            {
                "png": base64.b64encode(png).decode("ascii"),
                "caption": caption[: render.CAPTION_LIMIT],
            }
        )
        return in_mode([NewMessage(chat, PHOTO, payload) for chat in self._chat_ids], mode)

    def _render(self, event: Event) -> list[NewMessage]:
        match event:
            case PositionOpened():
                return self._texts(render.opened_text(event))
            case PositionClosed():
                return self._texts(render.closed_text(event))
            case PositionReduced():
                return self._texts(render.reduced_text(event))
            case OrderFailed():
                return self._texts(render.order_failed_text(event))
            case Reconciled():
                return self._texts(render.reconciled_text(event))
            case DailyProfitTargetReached():
                return self._texts(render.profit_target_text(event, self._zone))
            case DrawdownStopped():
                return self._texts(render.drawdown_stopped_text(event))
            case DailyLossLimitReached():
                return self._texts(render.daily_loss_text(event, self._zone))
            case EngineStarted():
                return self._texts(render.engine_started_text(event))
            case EngineStopped():
                return self._texts(render.engine_stopped_text(event))
            case VenueBanned():
                return self._texts(render.venue_banned_text(event, self._zone))
            case VenueBanLifted():
                return self._texts(render.venue_ban_lifted_text(event))
            case ClockSkewed():
                return self._texts(render.clock_skewed_text(event))
            case VenueUnreachable():
                return self._texts(render.venue_unreachable_text(event))
            case VenueReachable():
                return self._texts(render.venue_reachable_text(event))
            case SignalLogSilent():
                return self._texts(render.signal_log_silent_text(event, self._zone))
            case SignalLogResumed():
                return self._texts(render.signal_log_resumed_text(event))
            case SignalLogMissing():
                return self._texts(render.signal_log_missing_text(event))
            case ConfirmationRequested():
                return self._question(event)
            case ConfirmationResolved():
                text = render.resolved_text(event.symbol, event.signal, event.status, event.detail)
                payload = json.dumps({"signal_id": event.signal_id, "text": text})
                return [NewMessage(chat, EDIT, payload) for chat in self._chat_ids]
            case SignalSkipped(outcome=outcome) if outcome.startswith("rejected:"):
                reason = outcome.removeprefix("rejected:")
                if reason in QUIET_REJECTIONS:
                    return []
                return self._texts(render.rejected_text(event.symbol, reason))
            case SignalSkipped(outcome=outcome) if outcome.startswith(("filtered:", "invalid:")):
                return self._texts(render.skipped_text(event.symbol, outcome))
            case _:
                return []

    def _question(self, event: ConfirmationRequested) -> list[NewMessage]:
        buttons = [
            [
                ["✅ Open", TradeDecision(action=OPEN, ref=event.ref).pack()],
                ["❌ Skip", TradeDecision(action=SKIP, ref=event.ref).pack()],
            ]
        ]
        return self._texts(
            render.question_text(event, self._zone), buttons=buttons, confirm=event.signal.id
        )

    def _texts(
        self,
        text: str,
        *,
        buttons: list[list[list[str]]] | None = None,
        confirm: str | None = None,
    ) -> list[NewMessage]:
        parts = render.split_message(text)
        messages = []
        for chat in self._chat_ids:
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                payload: dict[str, Any] = {"text": part}
                if last and buttons:
                    payload["buttons"] = buttons
                if last and confirm:
                    payload["confirm"] = confirm
                messages.append(NewMessage(chat, TEXT, json.dumps(payload)))
        return messages
