"""/notify over the real aiogram client and the fake Bot API server: the settings shown and
changed, bad input refused, and each kind's notes sent with sound, without it
(``disable_notification``) or not at all, also across a restart.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot import render
from bot.app import App
from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import (
    CHAT,
    AppFactory,
    Chat,
    Events,
    append_signal,
    open_from_chat,
)
from trader.clock import ManualClock
from trader.events import PositionClosed, SignalSkipped


async def test_notify_shows_every_event_and_a_change_shows_what_it_was(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    await apps()
    chat = Chat(fake_telegram)
    shown = await chat.ask("/notify", "Notifications")
    for line in ("opened: on", "closed: on", "rejected: on", "skipped: off", "reports: on"):
        assert line in shown.plain
    assert "safety: on" in shown.plain

    changed = await chat.ask("/NOTIFY Opened SILENT", "opened: on → silent")
    assert "opened: silent ·" in changed.plain  # and the list shows it in force
    await chat.ask("/notify skipped on", "skipped: off → on")
    await chat.ask("/notify opened silent", "opened: silent → silent (as it was)")


async def test_bad_notify_input_gets_a_clear_reply_and_changes_nothing(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    before = app.notifier.notify.modes()

    await chat.ask("/notify sounds on", "Nothing changed: unknown event 'sounds'; one of: opened")
    await chat.ask("/notify opened loud", "opened needs on, silent or off, got 'loud'")
    refused = await chat.ask("/notify safety off", "Nothing changed")
    assert "can be silenced but never turned off" in refused.plain
    await chat.ask("/notify opened", "Usage: /notify")
    await chat.ask("/notify opened on now", "Usage: /notify")
    long = await chat.ask("/notify " + "x" * 500 + " on", "unknown event")
    assert "'" + "x" * 20 + "…'" in long.plain
    assert "x" * 21 not in long.plain

    assert app.notifier.notify.modes() == before
    shown = await chat.ask("/notify", "Notifications")
    assert "safety: on" in shown.plain


async def test_silent_notes_go_without_sound_and_off_ones_not_at_all(
    apps: AppFactory,
    fake_telegram: FakeTelegram,
    fake_bybit: FakeBybit,
    workdir: Path,
    clock: ManualClock,
) -> None:
    app = await apps()
    events = Events()
    app.engine.bus.subscribe(events)
    chat = Chat(fake_telegram)
    started = await chat.expect("Engine started")
    assert not started.silent
    await chat.ask("/notify opened silent", "opened: on → silent")
    await chat.ask("/notify closed off", "closed: on → off")

    opened = await open_from_chat(chat, workdir, clock)
    assert opened.silent
    assert not (await chat.ask("/status", "Status")).silent  # replies keep their sound

    # The stop-loss closes it: the note is off, so none is stored nor sent.
    await fake_bybit.set_ticker("SOLUSDT", last="148.50", bid="148.49", ask="148.51")
    await events.next(PositionClosed)
    stored = await stored_notes(app)
    assert any(note.startswith("🟢 Opened SOLUSDT") for note in stored)
    assert not any("Closed" in note for note in stored)

    # A command's own reply is not a note: /close still answers with closed notes off.
    await chat.ask("/notify closed silent", "closed: off → silent")
    mark = chat.mark()
    append_signal(workdir / "signals_log.csv", clock.now(), "BTCUSDT", "BUY")
    await chat.expect("Opened BTCUSDT", after=mark)
    await chat.ask("/notify closed off", "closed: silent → off")
    closed = await chat.ask("/close btc", "Closed BTCUSDT")
    assert "closed by command" in closed.plain
    assert [m.plain for m in fake_telegram.sent(CHAT)].count(closed.plain) == 1


async def test_skipped_signals_are_said_only_once_asked_for(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    events = Events()
    app.engine.bus.subscribe(events)
    chat = Chat(fake_telegram)
    await chat.expect("Engine started")
    log = workdir / "signals_log.csv"

    append_signal(log, clock.now(), "YFIUSDT", "BUY", signal_id="quiet")  # excluded_coins
    await events.next(SignalSkipped)
    await chat.ask("/notify skipped silent", "skipped: off → silent")
    mark = chat.mark()
    append_signal(log, clock.now(), "YFIUSDT", "BUY", signal_id="said")
    said = await chat.expect("Skipped YFIUSDT", after=mark)
    assert said.plain == "⏭ Skipped YFIUSDT: filtered (excluded coin)"
    assert said.silent
    # The outbox keeps the order of events: had the first been stored, it came first.
    assert [m for m in fake_telegram.sent(CHAT) if "Skipped" in m.plain] == [said]


async def test_scheduled_reports_follow_notify_and_report_always_answers(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.expect("Engine started")
    await chat.ask("/notify reports silent", "reports: on → silent")
    mark = chat.mark()
    await app.reporter.send_scheduled()
    assert (await chat.expect("Report", after=mark)).silent

    await chat.ask("/notify reports off", "reports: silent → off")
    await app.reporter.send_scheduled()
    replied = await chat.ask("/report", "Report")
    assert not replied.silent
    # Nothing was stored for the scheduled one: the outbox holds only the silent one.
    assert len([note for note in await stored_notes(app) if "Report" in note]) == 1


async def test_notify_settings_and_a_silent_message_survive_a_restart(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.ask("/notify opened silent", "opened: on → silent")
    await chat.ask("/notify safety silent", "safety: on → silent")
    await chat.ask("/start_trading", "Trading ON")
    fake_telegram.fail("sendMessage", 502)
    append_signal(workdir / "signals_log.csv", clock.now(), "SOLUSDT", "BUY")
    await fake_telegram.wait_until(lambda: len(app.engine.open_positions()) == 1)
    await app.stop()  # the note is still stored, undelivered

    fake_telegram.clear_failures()
    mark = chat.mark()
    await apps()
    opened = await chat.expect("Opened SOLUSDT", after=mark)
    assert opened.silent
    assert (await chat.expect("Engine started", after=mark)).silent
    shown = await chat.ask("/notify", "Notifications")
    assert "opened: silent" in shown.plain
    assert "safety: silent" in shown.plain
    assert "closed: on" in shown.plain


async def stored_notes(app: App) -> list[str]:
    """Every text stored in the outbox, sent or not, as the trader would read it."""
    async with app.runtime.repo.database.read() as conn:
        cursor = await conn.execute("SELECT kind, payload FROM outbox")
        rows = list(await cursor.fetchall())
        await cursor.close()
    return [render.plain(json.loads(payload)["text"]) for kind, payload in rows if kind == "text"]
