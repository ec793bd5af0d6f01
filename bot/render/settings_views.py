"""The replies of /notify (which notifications, and how) and /coins (the whitelist and the
blacklist): each shows what is in force, and a change shows what it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.notify_settings import Change, Kind, Mode
from bot.render.values import count, esc
from trader.coins import CoinAction, CoinEdit
from trader.rules import CoinLists

NOTIFY_MEANINGS: Mapping[Kind, str] = {
    Kind.OPENED: "a position opened",
    Kind.CLOSED: "a position closed or partly closed",
    Kind.REJECTED: "risk refusals and failed orders",
    Kind.SKIPPED: "filtered, stale and invalid signals, a line each",
    Kind.REPORTS: "the periodic report and its chart",
    Kind.SAFETY: "loss limit, Bybit checks and outages, a missing stop-loss, the signal "
    "log, start and stop; never off",
}
NOTIFY_USAGE = "Usage: /notify, or /notify EVENT on|silent|off (silent: without sound)"
COINS_USAGE = (
    "Usage: /coins add|remove SYMBOL... (whitelist), /coins exclude|include SYMBOL... "
    "(blacklist), /coins reset (the strategy file's lists)"
)


# --- /notify -----------------------------------------------------------------------------------


def notify_text(modes: Mapping[Kind, Mode], header: str = "<b>Notifications</b>") -> str:
    lines = [header]
    lines += [
        f"{esc(kind)}: {esc(mode)} · {esc(NOTIFY_MEANINGS[kind])}" for kind, mode in modes.items()
    ]
    lines += ["", NOTIFY_USAGE]
    return "\n".join(lines)


def notify_changed_text(change: Change, modes: Mapping[Kind, Mode]) -> str:
    same = " (as it was)" if change.before is change.after else ""
    header = f"<b>{esc(change.kind)}</b>: {esc(change.before)} → {esc(change.after)}{same}"
    return notify_text(modes, header=header)


def notify_refused_text(reason: str) -> str:
    return f"Nothing changed: {esc(reason)}\n{NOTIFY_USAGE}"


def notify_usage_text() -> str:
    return f"{NOTIFY_USAGE}\nEvents: {esc(', '.join(Kind))}"


# --- /coins ------------------------------------------------------------------------------------


def coins_text(lists: CoinLists, header: str = "<b>Coins</b>") -> str:
    lines = [
        header,
        f"Whitelist (top_coins): {_whitelist_size(lists.whitelist)}{_members(lists.whitelist)}",
        f"Blacklist (excluded_coins): {_blacklist_size(lists.blacklist)}"
        f"{_members(lists.blacklist)}",
        "",
        COINS_USAGE,
    ]
    return "\n".join(lines)


def coins_edit_text(edit: CoinEdit) -> str:
    if edit.action is CoinAction.RESET:
        was = edit.before
        header = (
            "Both lists are back to the strategy file's (were: whitelist "
            f"{_whitelist_size(was.whitelist)}, blacklist {_blacklist_size(was.blacklist)})."
        )
        return coins_text(edit.after, header=header + "\n")
    before, after = edit.before, edit.after
    if edit.action.on_whitelist:
        header = (
            f"<b>Whitelist</b>: {_whitelist_size(before.whitelist)} → "
            f"{_whitelist_size(after.whitelist)}"
        )
    else:
        header = (
            f"<b>Blacklist</b>: {_blacklist_size(before.blacklist)} → "
            f"{_blacklist_size(after.blacklist)}"
        )
    done, kept = _EDIT_WORDS[edit.action]
    lines = [header]
    if edit.changed:
        lines.append(f"{done}: {_names(edit.changed)}")
    if edit.unchanged:
        lines.append(f"{kept}: {_names(edit.unchanged)}")
    if edit.refused:
        refused = ", ".join(f"{esc(name)} ({esc(why)})" for name, why in edit.refused)
        lines.append(f"Refused: {refused}")
    if edit.action is CoinAction.REMOVE and before.whitelist and not after.whitelist:
        lines.append("⚠️ The whitelist is empty now: signals for any coin are traded.")
    blocked = sorted(set(edit.changed) & after.blacklist) if edit.action is CoinAction.ADD else []
    if blocked:
        lines.append(
            f"⚠️ On the blacklist too, so still filtered: {_names(blocked)} "
            "(/coins include SYMBOL lifts it)."
        )
    return coins_text(after, header="\n".join(lines) + "\n")


def coins_refused_text(reason: str) -> str:
    return f"Nothing changed: {esc(reason)}\n{COINS_USAGE}"


_EDIT_WORDS: Mapping[CoinAction, tuple[str, str]] = {
    CoinAction.ADD: ("Added", "Already on it"),
    CoinAction.REMOVE: ("Removed", "Not on it"),
    CoinAction.EXCLUDE: ("Excluded", "Already on it"),
    CoinAction.INCLUDE: ("Included again", "Not on it"),
}


def _whitelist_size(symbols: frozenset[str]) -> str:
    return count(len(symbols), "coin") if symbols else "empty (any coin is traded)"


def _blacklist_size(symbols: frozenset[str]) -> str:
    return count(len(symbols), "coin") if symbols else "empty"


def _members(symbols: frozenset[str]) -> str:
    return f": {_names(sorted(symbols))}" if symbols else ""


def _names(symbols: Iterable[str]) -> str:
    return esc(", ".join(symbols))
