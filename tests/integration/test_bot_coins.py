"""/coins over the real aiogram client and the fake Bot API server, with the paper engine on
the fake Bybit: the lists shown and edited, symbols checked against Bybit's instruments, the
engine screening with the edited lists from the next signal on, and a restart keeping them.
"""

from __future__ import annotations

from pathlib import Path

from tests.fakes.bybit import FakeBybit
from tests.fakes.telegram import FakeTelegram
from tests.integration.support import AppFactory, Chat, Events, append_signal
from trader.clock import ManualClock
from trader.events import SignalSkipped


async def test_coins_shows_the_strategy_files_lists(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    await apps()
    chat = Chat(fake_telegram)
    shown = await chat.ask("/coins", "Coins")
    assert "Whitelist (top_coins): empty (any coin is traded)" in shown.plain
    assert "Blacklist (excluded_coins): 1 coin: YFIUSDT" in shown.plain


async def test_coins_edits_both_lists_and_says_what_each_edit_did(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    added = await chat.ask("/coins add sol BTCUSDT", "Added: SOLUSDT, BTCUSDT")
    assert "Whitelist: empty (any coin is traded) → 2 coins" in added.plain
    assert "Whitelist (top_coins): 2 coins: BTCUSDT, SOLUSDT" in added.plain

    again = await chat.ask("/COINS ADD Sol eth", "Added: ETHUSDT")
    assert "Already on it: SOLUSDT" in again.plain
    assert "Whitelist: 2 coins → 3 coins" in again.plain

    removed = await chat.ask("/coins remove btc xrp", "Removed: BTCUSDT")
    assert "Not on it: XRPUSDT" in removed.plain
    excluded = await chat.ask("/coins exclude doge", "Excluded: DOGEUSDT")
    assert "Blacklist: 1 coin → 2 coins" in excluded.plain
    included = await chat.ask("/coins include yfi", "Included again: YFIUSDT")
    assert "Blacklist (excluded_coins): 1 coin: DOGEUSDT" in included.plain

    await chat.ask("/coins remove sol eth", "The whitelist is empty now: signals for any coin")
    assert app.engine.coins.lists.whitelist == frozenset()
    assert app.engine.coins.lists.blacklist == {"DOGEUSDT"}


async def test_unknown_symbols_are_refused_by_name_and_the_rest_applied(
    apps: AppFactory, fake_telegram: FakeTelegram, fake_bybit: FakeBybit
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    fake_bybit.seed_instrument("DATEDUSDT", "0.01", "0.1", "0.1", contract_type="LinearFutures")
    reply = await chat.ask("/coins add sol foo <b> dated", "Added: SOLUSDT")
    assert "Refused: FOOUSDT (not on Bybit)" in reply.plain
    assert "DATEDUSDT (not a USDT perpetual)" in reply.plain
    assert "'<b>' (not a symbol)" in reply.plain
    assert app.engine.coins.lists.whitelist == {"SOLUSDT"}

    # Blocking a coin never waits on Bybit (nor asks it): any symbol may be excluded.
    asked = len(fake_bybit.requests_to("/v5/market/instruments-info"))
    blocked = await chat.ask("/coins exclude nosuchcoin", "Excluded: NOSUCHCOINUSDT")
    assert "Blacklist: 1 coin → 2 coins" in blocked.plain
    assert len(fake_bybit.requests_to("/v5/market/instruments-info")) == asked
    long = await chat.ask("/coins add " + "Z" * 200, "(not a symbol)")
    assert "'" + "Z" * 20 + "…'" in long.plain
    assert "Z" * 21 not in long.plain

    await chat.ask("/coins add", "Nothing changed: /coins add needs at least one symbol")
    await chat.ask("/coins frobnicate sol", "Nothing changed: unknown action 'frobnicate'")
    await chat.ask("/coins reset sol", "Nothing changed: /coins reset takes no symbols")
    many = " ".join(f"C{n}" for n in range(31))
    await chat.ask(f"/coins add {many}", "at most 30 symbols at a time")
    assert app.engine.coins.lists.whitelist == {"SOLUSDT"}


async def test_signals_are_screened_with_the_edited_lists_from_the_next_one_on(
    apps: AppFactory, fake_telegram: FakeTelegram, workdir: Path, clock: ManualClock
) -> None:
    app = await apps()
    events = Events()
    app.engine.bus.subscribe(events)
    chat = Chat(fake_telegram)
    log = workdir / "signals_log.csv"
    await chat.ask("/start_trading", "Trading ON")

    await chat.ask("/coins exclude sol", "Excluded: SOLUSDT")
    append_signal(log, clock.now(), "SOLUSDT", "BUY", signal_id="excluded")
    skipped = await events.next(SignalSkipped)
    assert isinstance(skipped, SignalSkipped)
    assert (skipped.symbol, skipped.outcome) == ("SOLUSDT", "filtered:excluded_coin")

    await chat.ask("/coins add btc", "Added: BTCUSDT")
    seen = len(events.seen)
    append_signal(log, clock.now(), "ETHUSDT", "BUY", signal_id="not-listed")
    skipped = await events.next(SignalSkipped, after=seen)
    assert isinstance(skipped, SignalSkipped)
    assert (skipped.symbol, skipped.outcome) == ("ETHUSDT", "filtered:not_in_top_coins")

    await chat.ask("/coins include sol", "Included again: SOLUSDT")
    await chat.ask("/coins add sol", "Added: SOLUSDT")
    append_signal(log, clock.now(), "SOLUSDT", "BUY", signal_id="listed")
    await chat.expect("Opened SOLUSDT")
    signals = await chat.ask("/signals", "Last 3 signals")
    assert "SOLUSDT BUY: filtered:excluded_coin" in signals.plain


async def test_a_restart_keeps_the_edited_lists_and_the_start_message_counts_them(
    apps: AppFactory, fake_telegram: FakeTelegram
) -> None:
    app = await apps()
    chat = Chat(fake_telegram)
    await chat.expect("any coin · blacklist 1 coin")
    await chat.ask("/coins add sol btc", "Added: SOLUSDT, BTCUSDT")
    await chat.ask("/coins exclude doge", "Excluded: DOGEUSDT")
    await app.stop()

    mark = chat.mark()
    app = await apps()
    started = await chat.expect("Engine started", after=mark)
    assert "whitelist 2 coins · blacklist 2 coins" in started.plain
    shown = await chat.ask("/coins", "Coins")
    assert "Whitelist (top_coins): 2 coins: BTCUSDT, SOLUSDT" in shown.plain
    assert "Blacklist (excluded_coins): 2 coins: DOGEUSDT, YFIUSDT" in shown.plain

    reset = await chat.ask("/coins reset", "Both lists are back to the strategy file's")
    assert "(were: whitelist 2 coins, blacklist 2 coins)" in reset.plain
    assert "Whitelist (top_coins): empty (any coin is traded)" in reset.plain
    await app.stop()
    mark = chat.mark()
    await apps()
    started = await chat.expect("Engine started", after=mark)
    assert "any coin · blacklist 1 coin" in started.plain
