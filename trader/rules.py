"""Trading rules: signal filters, risk limits and exit triggers. Pure functions, ``Decimal``.

The engine and replay call these same functions, in the same order: screen, risk, then size
(``trader.sizing``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from trader.models import CloseReason, InvalidSignal, Side, Signal, TrailingStop
from trader.strategy import Strategy

QUOTE_COIN = "USDT"  # what a symbol typed without its quote coin is quoted in
PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
MAX_USDT_LIMIT = Decimal(10_000_000)  # no account here holds more: a bigger value is a typo


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits a trader may change from chat; they override the strategy file."""

    max_open_positions: int
    max_daily_loss_usdt: Decimal
    max_position_size_usdt: Decimal
    min_confidence: Decimal
    leverage: int
    margin_usdt: Decimal = Decimal(100)  # the margin of one trade (position_size_usdt)
    # The guards; None: off.
    cooldown_minutes: int | None = None  # cooldown_minutes_after_loss
    max_drawdown_pct: Decimal | None = None
    profit_target_usdt: Decimal | None = None  # daily_profit_target_usdt

    @classmethod
    def from_strategy(cls, strategy: Strategy) -> Limits:
        return cls(
            max_open_positions=strategy.max_open_positions,
            max_daily_loss_usdt=strategy.max_daily_loss_usdt,
            max_position_size_usdt=strategy.max_position_size_usdt,
            min_confidence=strategy.min_confidence,
            leverage=strategy.leverage,
            margin_usdt=strategy.position_size_usdt,
            cooldown_minutes=strategy.cooldown_minutes_after_loss,
            max_drawdown_pct=strategy.max_drawdown_pct,
            profit_target_usdt=strategy.daily_profit_target_usdt,
        )

    def with_overrides(self, overrides: Mapping[str, str]) -> Limits:
        """Apply stored overrides (chat name → text); unknown or bad ones are ignored."""
        changes: dict[str, int | Decimal | None] = {}
        for name, raw in overrides.items():
            if name in LIMIT_FIELDS:
                try:
                    changes[LIMIT_FIELDS[name]] = parse_limit(name, _plain(raw))
                except ValueError:
                    continue  # a stored value that no longer validates falls back to the file
        return replace(self, **changes)  # type: ignore[arg-type]

    def as_chat_names(self) -> dict[str, int | Decimal | None]:
        return {name: getattr(self, field) for name, field in LIMIT_FIELDS.items()}


# The names used in chat (``/limits NAME VALUE``) and the field each one sets.
LIMIT_FIELDS: dict[str, str] = {
    "max_positions": "max_open_positions",
    "daily_loss": "max_daily_loss_usdt",
    "margin": "margin_usdt",
    "position_size": "max_position_size_usdt",
    "min_confidence": "min_confidence",
    "leverage": "leverage",
    "cooldown": "cooldown_minutes",
    "max_drawdown": "max_drawdown_pct",
    "profit_target": "profit_target_usdt",
}
GUARDS = frozenset({"cooldown", "max_drawdown", "profit_target"})  # "off" switches them off
OFF = "off"
assert set(LIMIT_FIELDS.values()) == {f.name for f in fields(Limits)}


def require_limit_name(name: str) -> None:
    """``ValueError`` naming the limits there are, for a name that is not one of them."""
    if name not in LIMIT_FIELDS:
        raise ValueError(f"unknown limit {name!r}; one of: {', '.join(LIMIT_FIELDS)}")


SYMBOL_SHAPE = re.compile(r"[A-Z0-9]{2,30}")  # what a typed symbol may look like


def looks_like_symbol(word: str) -> bool:
    """Whether ``word`` (any case) has a symbol's shape: letters and digits, 2 to 30."""
    return SYMBOL_SHAPE.fullmatch(word.strip().upper()) is not None


def full_symbol(word: str) -> str:
    """A symbol as a trader types it: any case, the quote coin optional ("doge": DOGEUSDT)."""
    symbol = word.strip().upper()
    return symbol if symbol.endswith(QUOTE_COIN) else symbol + QUOTE_COIN


def parse_limit(name: str, raw: str) -> int | Decimal | None:
    """Validate a limit typed in chat; ``ValueError`` says what is wrong in plain words.
    A guard takes ``off`` too (None)."""
    require_limit_name(name)
    text = raw.strip()
    if name in GUARDS and text.lower() == OFF:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} needs a number, got {echo(text)}") from None
    if not value.is_finite():
        raise ValueError(f"{name} needs a finite number")
    # ASCII digits only, no exponent: Decimal() also takes "١٢", "５" and "1e9999" (which
    # would switch the daily-loss stop off), and the signal log's parser refuses them.
    if not PLAIN_NUMBER.fullmatch(text):
        raise ValueError(f"{name} needs a number like 250 or 0.5, got {echo(text)}")
    if name in ("max_positions", "leverage", "cooldown"):
        if value != value.to_integral_value():
            raise ValueError(f"{name} needs a whole number")
        number = int(value)
        upper = {"leverage": 125, "max_positions": 1000, "cooldown": 10_080}[name]
        if not 1 <= number <= upper:
            raise ValueError(f"{name} must be between 1 and {upper}")
        return number
    if name == "min_confidence":
        if not Decimal(0) <= value <= 1:
            raise ValueError("min_confidence must be between 0 and 1")
        return value
    if name == "max_drawdown":
        if not Decimal(0) < value < 100:
            raise ValueError("max_drawdown must be a percent above 0 and below 100, or off")
        return value
    if not Decimal(0) < value <= MAX_USDT_LIMIT:
        raise ValueError(f"{name} must be a positive amount of USDT, at most {MAX_USDT_LIMIT:,}")
    return value


def _plain(stored: str) -> str:
    """A stored limit in plain digits: one stored as "1E+3" before limits were stored so
    is read as 1000, not dropped for the file's value."""
    try:
        value = Decimal(stored.strip())
    except InvalidOperation:
        return stored
    return format(value, "f") if value.is_finite() else stored


def echo(text: str, limit: int = 20) -> str:
    """What the trader typed, quoted back short (a 5,000-character echo is refused by
    Telegram, and the trader would see nothing)."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


# --- filters -------------------------------------------------------------------------------


def signal_ttl(signal: Signal, strategy: Strategy) -> timedelta:
    return timedelta(minutes=signal.ttl_minutes or strategy.default_ttl_minutes)


def is_stale(signal: Signal, now: datetime, strategy: Strategy) -> bool:
    """Too old on first sight: older than ``max_signal_age_seconds`` or past its TTL.

    A timestamp further in the future than that age is as untrustworthy (a skewed clock would
    stretch the TTL, which counts from it), so it is stale too.
    """
    age = now - signal.timestamp
    max_age = timedelta(seconds=strategy.max_signal_age_seconds)
    return age > max_age or age < -max_age or age >= signal_ttl(signal, strategy)


def outcome_on_sight(
    record: Signal | InvalidSignal, now: datetime, strategy: Strategy
) -> str | None:
    """The outcome of a row decided by the row alone, whatever the book holds: invalid, a
    verdict never traded, or stale (``screen`` checks the last two first, in this
    order). None for a row that needs the engine's judgement."""
    if isinstance(record, InvalidSignal):
        return f"invalid:{record.reason}"
    if record.side is None:
        return "filtered:verdict"
    if is_stale(record, now, strategy):
        return "filtered:stale"
    return None


@dataclass(frozen=True, slots=True)
class CoinLists:
    """The whitelist (``top_coins``; empty: any coin) and the blacklist (``excluded_coins``):
    the strategy file's, or the ones a trader edited from chat, which override them."""

    whitelist: frozenset[str]
    blacklist: frozenset[str]

    @classmethod
    def from_strategy(cls, strategy: Strategy) -> CoinLists:
        return cls(whitelist=strategy.top_coins, blacklist=strategy.excluded_coins)


def screen(
    signal: Signal,
    *,
    now: datetime,
    strategy: Strategy,
    limits: Limits,
    open_symbols: Collection[str],
    coins: CoinLists | None = None,
    cooling: Collection[str] = (),
) -> str | None:
    """Why ``signal`` is filtered out, or None when it may be traded. ``coins``: the lists
    in force (None: the strategy file's); ``cooling``: symbols in their cooldown after a
    loss (``trader.cooldowns``)."""
    coins = coins or CoinLists.from_strategy(strategy)
    if signal.side is None:
        return "verdict"
    if is_stale(signal, now, strategy):
        return "stale"
    coin = coin_reason(signal.symbol, coins)
    if coin is not None:
        return coin
    if signal.confidence < limits.min_confidence:
        return "low_confidence"
    if signal.symbol in open_symbols:
        return "already_open"
    if signal.symbol in cooling:
        return "cooldown"
    return None


def coin_reason(symbol: str, coins: CoinLists) -> str | None:
    """Why the lists in force keep ``symbol`` out (checked again at a confirmation's press:
    the lists may have changed since the question)."""
    if symbol in coins.blacklist:
        return "excluded_coin"
    if coins.whitelist and symbol not in coins.whitelist:
        return "not_in_top_coins"
    return None


# --- risk ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RiskState:
    """What risk is measured against at the moment of an entry."""

    trading_enabled: bool
    open_positions: int  # open plus in flight
    daily_net_pnl: Decimal  # realised today (UTC), net of fees


def price_moved(signal: Signal, price: Decimal, strategy: Strategy) -> bool:
    """The market is further from the signal's ``entry_price`` than the strategy allows
    (``max_entry_deviation_pct``): the setup it saw is gone. No entry price, no check."""
    entry = signal.entry_price
    if entry is None or entry <= 0:
        return False
    return abs(price - entry) / entry * 100 > strategy.max_entry_deviation_pct


def daily_loss(daily_net_pnl: Decimal) -> Decimal:
    """Today's realised net loss as a positive amount (0 on a winning day)."""
    return max(-daily_net_pnl, Decimal(0))


def daily_loss_reached(daily_net_pnl: Decimal, limits: Limits) -> bool:
    return daily_loss(daily_net_pnl) >= limits.max_daily_loss_usdt


def profit_target_reached(daily_net_pnl: Decimal, limits: Limits) -> bool:
    target = limits.profit_target_usdt
    return target is not None and daily_net_pnl >= target


def risk_reason(margin: Decimal, state: RiskState, limits: Limits) -> str | None:
    """Why an entry of ``margin`` would break a limit now, or None."""
    if not state.trading_enabled:
        return "trading_disabled"
    if state.open_positions >= limits.max_open_positions:
        return "max_open_positions"
    if daily_loss_reached(state.daily_net_pnl, limits):
        return "daily_loss_limit"
    if profit_target_reached(state.daily_net_pnl, limits):
        return "daily_profit_target"
    if margin > limits.max_position_size_usdt:
        return "position_size"
    return None


def path_exit(
    side: Side,
    *,
    high: Decimal,
    low: Decimal,
    final: Decimal,
    stop: Decimal,
    take: Decimal,
    trailing: TrailingStop | None = None,
) -> tuple[CloseReason, Decimal]:
    """Exit of a position over a price path known only by its extremes (replay).

    The SL is checked before the TP: when both were reached, we cannot know which came first,
    and assuming the loss is the honest choice. Neither reached: the TTL exit at ``final``.
    A ``trailing`` stop (its ``active_price`` set: the entry for one active at once) whose
    activation level was reached before the TP's: the lowest exit it allows, the activation
    level less the distance (no worse than the worst price the path reached).
    """
    adverse, favourable = (low, high) if side is Side.BUY else (high, low)
    if exit_trigger(side, adverse, stop, take) is CloseReason.STOP_LOSS:
        return CloseReason.STOP_LOSS, stop
    if trailing is not None and trailing.active_price is not None:
        active, sign = trailing.active_price, side.sign
        if sign * (favourable - active) >= 0 and sign * (take - active) > 0:
            level = active - sign * trailing.distance
            return CloseReason.TRAILING_STOP, adverse if sign * (adverse - level) > 0 else level
    if exit_trigger(side, favourable, stop, take) is CloseReason.TAKE_PROFIT:
        return CloseReason.TAKE_PROFIT, take
    return CloseReason.TTL, final


def exit_trigger(
    side: Side, price: Decimal, stop: Decimal, take: Decimal, trailing: Decimal | None = None
) -> CloseReason | None:
    """Which protective order ``price`` triggers, or None: the SL first, then the trailing
    stop (``trailing``: the level it stands at now; None: none, or not active yet), then the
    TP."""
    if side is Side.BUY:
        if price <= stop:
            return CloseReason.STOP_LOSS
        if trailing is not None and price <= trailing:
            return CloseReason.TRAILING_STOP
        if price >= take:
            return CloseReason.TAKE_PROFIT
    else:
        if price >= stop:
            return CloseReason.STOP_LOSS
        if trailing is not None and price >= trailing:
            return CloseReason.TRAILING_STOP
        if price <= take:
            return CloseReason.TAKE_PROFIT
    return None
