"""Notification control: every engine event has its /notify kind (or is said to have none),
the command's words are parsed strictly, the stored modes are read back at start, a silent
message is stored so, and a skipped signal is one line; and the coin lists stored from chat
are read over the strategy file's.
"""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot import render
from bot.notify_settings import (
    KIND_OF_EVENT,
    UNSET_EVENTS,
    Kind,
    Mode,
    NotifySettings,
    kind_of,
    parse_change,
)
from storage.repositories import SqliteRepositories
from tests.unit.storage_support import repo
from trader.coins import BLACKLIST_KEY, WHITELIST_KEY, stored_lists
from trader.events import Event, OrderFailed, PositionClosed, SignalSkipped
from trader.models import ClosedTrade, CloseReason, Side
from trader.ports import NewMessage
from trader.rules import CoinLists

__all__ = ["repo"]  # fixtures

T0 = datetime(2025, 10, 19, tzinfo=UTC)


def test_every_event_is_given_a_kind_or_said_to_have_none() -> None:
    # A new event must be placed: else /notify could neither silence nor stop it.
    events = set(typing.get_args(Event))
    placed = set(KIND_OF_EVENT) | UNSET_EVENTS | {SignalSkipped}
    assert events == placed
    assert not set(KIND_OF_EVENT) & UNSET_EVENTS


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        ("rejected:max_open_positions", Kind.REJECTED),
        ("filtered:stale", Kind.SKIPPED),
        ("filtered:excluded_coin", Kind.SKIPPED),
        ("invalid:bad_confidence", Kind.SKIPPED),
        ("declined", None),
        ("expired", None),
    ],
)
def test_a_skipped_signals_kind_follows_its_outcome(outcome: str, kind: Kind | None) -> None:
    assert kind_of(SignalSkipped("s1", "SOLUSDT", outcome, T0)) is kind


def test_words_are_read_in_any_case() -> None:
    assert parse_change("Opened", "SILENT") == (Kind.OPENED, Mode.SILENT)
    assert parse_change("safety", "silent") == (Kind.SAFETY, Mode.SILENT)


@pytest.mark.parametrize(
    ("event", "mode", "message"),
    [
        ("sounds", "on", "unknown event 'sounds'; one of: opened, closed, rejected"),
        ("opened", "loud", "opened needs on, silent or off, got 'loud'"),
        ("safety", "off", "can be silenced but never turned off"),
        ("y" * 300, "on", "unknown event '" + "y" * 20 + "…'"),
    ],
)
def test_bad_words_are_refused_plainly(event: str, mode: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        parse_change(event, mode)
    assert len(str(refused.value)) < 120


async def test_stored_modes_are_read_back_and_bad_ones_ignored(repo: SqliteRepositories) -> None:
    settings = await NotifySettings.load(repo)
    assert settings.mode(Kind.SKIPPED) is Mode.OFF  # off until asked for
    await settings.set("skipped", "silent")
    await settings.set("reports", "off")
    await repo.set_setting("notify.safety", "off")  # never valid: the default holds
    await repo.set_setting("notify.opened", "loud")
    await repo.set_setting("notify.nonsense", "on")

    again = await NotifySettings.load(repo)
    assert again.modes() == {
        Kind.OPENED: Mode.ON,
        Kind.CLOSED: Mode.ON,
        Kind.REJECTED: Mode.ON,
        Kind.SKIPPED: Mode.SILENT,
        Kind.REPORTS: Mode.OFF,
        Kind.SAFETY: Mode.ON,
    }


def test_stored_coin_lists_override_the_files_each_on_its_own() -> None:
    file_lists = CoinLists(whitelist=frozenset({"SOLUSDT"}), blacklist=frozenset({"YFIUSDT"}))
    assert stored_lists(file_lists, {}) == file_lists
    emptied = stored_lists(file_lists, {WHITELIST_KEY: "[]"})
    assert emptied == CoinLists(whitelist=frozenset(), blacklist=frozenset({"YFIUSDT"}))
    both = stored_lists(file_lists, {WHITELIST_KEY: '["BTCUSDT"]', BLACKLIST_KEY: '["X"]'})
    assert both == CoinLists(whitelist=frozenset({"BTCUSDT"}), blacklist=frozenset({"X"}))
    # A value that does not parse leaves the file's list in force.
    assert stored_lists(file_lists, {WHITELIST_KEY: "SOL", BLACKLIST_KEY: "[1]"}) == file_lists


async def test_a_silent_message_is_stored_silent(repo: SqliteRepositories) -> None:
    await repo.enqueue([NewMessage(1, "text", "{}", silent=True), NewMessage(2, "text", "{}")], T0)
    heads = {message.chat_id: message.silent for message in await repo.next_unsent()}
    assert heads == {1: True, 2: False}


def test_a_skipped_signal_is_one_line() -> None:
    assert render.skipped_text("SOLUSDT", "filtered:low_confidence") == (
        "⏭ Skipped <b>SOLUSDT</b>: filtered (low confidence)"
    )
    assert render.skipped_text("", "invalid:bad_timestamp") == (
        "⏭ Skipped a signal row: invalid (bad timestamp)"
    )


def test_a_failed_close_is_a_safety_message_a_failed_entry_a_rejection() -> None:
    """``/notify rejected off`` must not hide a close that failed: a position is at risk."""
    entry = OrderFailed("s1", "SOLUSDT", "insufficient balance", T0)
    close = OrderFailed("s1", "SOLUSDT", "Bybit did not answer", T0, at_risk=True)
    assert kind_of(entry) is Kind.REJECTED
    assert kind_of(close) is Kind.SAFETY


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (CloseReason.TAKE_PROFIT, Kind.CLOSED),
        (CloseReason.MANUAL, Kind.CLOSED),
        (CloseReason.LIQUIDATION, Kind.SAFETY),
        (CloseReason.ADL, Kind.SAFETY),
        (CloseReason.DELIVERY, Kind.SAFETY),
        (CloseReason.EXTERNAL, Kind.SAFETY),
    ],
)
def test_exits_bybit_made_itself_are_safety_messages(reason: CloseReason, kind: Kind) -> None:
    """``/notify closed off`` silences our own closes, never a liquidation."""
    closed = ClosedTrade(
        signal_id="s1",
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal(1),
        entry_price=Decimal(100),
        exit_price=Decimal(90),
        leverage=10,
        margin=Decimal(10),
        entry_fee=Decimal("0.05"),
        exit_fee=Decimal("0.05"),
        gross_pnl=Decimal(-10),
        net_pnl=Decimal("-10.1"),
        reason=reason,
        opened_at=T0,
        closed_at=T0,
    )
    assert kind_of(PositionClosed(closed)) is kind
