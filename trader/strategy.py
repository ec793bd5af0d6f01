"""The strategy file (``STRATEGY_PATH``, ``BYBIT_OPTIMAL_CONFIG.json`` as the signal generator
writes it, plus our optional keys): read, validated, with one ``ConfigError`` line naming a bad
key, and every unknown key warned about with the nearest known one.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from trader.errors import ConfigError
from trader.take_profits import KEYS as TAKE_PROFIT_KEYS
from trader.take_profits import Share, parse_keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Strategy:
    """The strategy file as the signal generator writes it, plus our optional keys."""

    leverage: int = 10
    sl_pct: Decimal = Decimal(20)  # percent of margin: the price move is sl_pct / leverage
    tp_pct: Decimal = Decimal(40)
    top_coins: frozenset[str] = frozenset()  # empty: any coin
    excluded_coins: frozenset[str] = frozenset()
    fee_rate: Decimal = Decimal("0.00055")
    position_size_usdt: Decimal = Decimal(100)
    min_confidence: Decimal = Decimal("0.5")
    max_open_positions: int = 15
    max_daily_loss_usdt: Decimal = Decimal(500)
    max_position_size_usdt: Decimal = Decimal(100)
    default_ttl_minutes: int = 30
    max_signal_age_seconds: int = 120
    confirm_timeout_seconds: int = 60
    signal_silence_minutes: int = 15  # no row for this long: chat is told once
    # A signal whose entry_price is further than this from the market is not traded.
    max_entry_deviation_pct: Decimal = Decimal("1.0")
    paper_balance_usdt: Decimal = Decimal(1000)
    # Guards, each off when absent (issue 14): a symbol's signals wait this long after a
    # losing close on it; trading stops at this drawdown from the equity peak; no new entry
    # once today's realised net profit reaches the target.
    cooldown_minutes_after_loss: int | None = None
    max_drawdown_pct: Decimal | None = None
    daily_profit_target_usdt: Decimal | None = None
    # Sizing from the balance instead of position_size_usdt (at most one of the two): the
    # margin as a percent of it, or the qty whose stop-loss loses this percent of it.
    position_size_pct: Decimal | None = None
    risk_per_trade_pct: Decimal | None = None
    # A trailing stop held by the exchange: distance and activation profit, both in percent
    # of margin like sl (the price move is pct ÷ leverage); absent: none.
    trailing_stop_pct: Decimal | None = None
    trailing_activation_pct: Decimal | None = None
    # Several take-profits (replacing parameters.tp), or the signal's targets as TPs, and
    # the stop-loss moved to breakeven once TP N has filled (trader/take_profits.py).
    take_profits: tuple[Share, ...] = ()
    targets_from_signal: bool = False
    breakeven_after_tp: int | None = None
    warnings: tuple[str, ...] = ()  # keys the file has that nobody reads (typos, say)
    source: str = "built-in defaults"  # the file it was read from


_POSITIVE_DECIMALS = (
    "position_size_usdt",
    "max_daily_loss_usdt",
    "max_position_size_usdt",
    "paper_balance_usdt",
    "max_entry_deviation_pct",
)
_OPTIONAL_GUARDS = (  # absent: off
    "cooldown_minutes_after_loss",
    "max_drawdown_pct",
    "daily_profit_target_usdt",
    "position_size_pct",
    "risk_per_trade_pct",
    "trailing_stop_pct",
    "trailing_activation_pct",
    *TAKE_PROFIT_KEYS,
)
_POSITIVE_INTS = (
    "max_open_positions",
    "default_ttl_minutes",
    "max_signal_age_seconds",
    "confirm_timeout_seconds",
    "signal_silence_minutes",
)


def load_strategy(path: Path | None, *, required: bool = False) -> Strategy:
    """Read a strategy file; built-in defaults when ``path`` is None or does not exist,
    unless it is ``required`` (STRATEGY_PATH was set): then its absence is a ``ConfigError``."""
    if path is not None and required and not path.exists():
        raise ConfigError(
            f"STRATEGY_PATH {path} does not exist: fix the path, or unset STRATEGY_PATH to "
            "trade the built-in defaults"
        )
    if path is None or not path.exists():
        return Strategy()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"strategy file {path}: cannot read it ({exc.strerror})") from None
    try:
        # parse_float keeps 0.00055 exact: money never passes through float.
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"strategy file {path}: not valid JSON ({exc.msg}, line {exc.lineno})"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"strategy file {path}: must be a JSON object")
    try:
        strategy = parse_strategy(data)
    except ConfigError as exc:
        raise ConfigError(f"strategy file {path}: {exc}") from None
    for warning in strategy.warnings:
        log.warning("strategy file %s: %s", path, warning)
    return replace(strategy, source=str(path))


def parse_strategy(data: Mapping[str, Any]) -> Strategy:
    """Build a ``Strategy`` from the generator's JSON shape; unknown keys are ignored."""
    defaults = Strategy()
    params = data.get("parameters", {})
    if not isinstance(params, Mapping):
        raise ConfigError("parameters: must be an object")
    leverage = _int(params, "leverage", defaults.leverage, "parameters.leverage")
    if not 1 <= leverage <= 125:
        raise ConfigError("parameters.leverage: must be between 1 and 125")
    sl_pct = _decimal(params, "sl", defaults.sl_pct, "parameters.sl")
    tp_pct = _decimal(params, "tp", defaults.tp_pct, "parameters.tp")
    for key, pct in (("parameters.sl", sl_pct), ("parameters.tp", tp_pct)):
        if pct <= 0:
            raise ConfigError(f"{key}: must be a positive percent of margin")
        if pct / leverage >= 100:
            raise ConfigError(f"{key}: a {pct}% move of margin at {leverage}x exceeds the price")
    values: dict[str, Any] = {
        "leverage": leverage,
        "sl_pct": sl_pct,
        "tp_pct": tp_pct,
        "top_coins": _coins(data, "top_coins"),
        "excluded_coins": _coins(data, "excluded_coins"),
    }
    fee_rate = _decimal(data, "fee_rate", defaults.fee_rate, "fee_rate")
    if not Decimal(0) <= fee_rate < Decimal("0.01"):
        raise ConfigError("fee_rate: must be at least 0 and below 0.01")
    values["fee_rate"] = fee_rate
    for key in _POSITIVE_DECIMALS:
        value = _decimal(data, key, getattr(defaults, key), key)
        if value <= 0:
            raise ConfigError(f"{key}: must be positive")
        values[key] = value
    for key in _POSITIVE_INTS:
        number = _int(data, key, getattr(defaults, key), key)
        if number <= 0:
            raise ConfigError(f"{key}: must be a positive whole number")
        values[key] = number
    values.update(_guards(data))
    min_confidence = _decimal(data, "min_confidence", defaults.min_confidence, "min_confidence")
    if not Decimal(0) <= min_confidence <= 1:
        raise ConfigError("min_confidence: must be between 0 and 1")
    values["min_confidence"] = min_confidence
    values["warnings"] = unknown_keys(data)
    return Strategy(**values)


# The generator's own keys: read by its tools, not by us, and no typo.
GENERATOR_KEYS = frozenset(
    {"version", "strategy", "exchange", "fee_type", "performance", "tested_on", "data_period"}
)
PARAMETER_KEYS = frozenset({"leverage", "sl", "tp"})


def unknown_keys(data: Mapping[str, Any]) -> tuple[str, ...]:
    """One line per key that nothing reads, with the known key it is nearest to."""
    ours = frozenset({"parameters", "top_coins", "excluded_coins", "fee_rate", "min_confidence"})
    ours |= frozenset(_POSITIVE_DECIMALS) | frozenset(_POSITIVE_INTS) | frozenset(_OPTIONAL_GUARDS)
    found: list[tuple[str, frozenset[str], str]] = [
        (str(key), ours | GENERATOR_KEYS, "") for key in data
    ]
    params = data.get("parameters")
    if isinstance(params, Mapping):
        found += [(str(key), PARAMETER_KEYS, "parameters.") for key in params]
    lines = []
    for key, known, prefix in found:
        if key in known:
            continue
        near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {prefix}{near[0]}?" if near else ""
        lines.append(f"unknown key {prefix}{key} is ignored{hint}")
    return tuple(lines)


def _guards(data: Mapping[str, Any]) -> dict[str, Any]:
    """The optional guards that the file sets (absent or null: off)."""
    guards: dict[str, Any] = {}
    if data.get("cooldown_minutes_after_loss") is not None:
        minutes = _int(data, "cooldown_minutes_after_loss", 0, "cooldown_minutes_after_loss")
        if not 1 <= minutes <= 10_080:
            raise ConfigError("cooldown_minutes_after_loss: must be from 1 to 10080 (a week)")
        guards["cooldown_minutes_after_loss"] = minutes
    if data.get("max_drawdown_pct") is not None:
        pct = _decimal(data, "max_drawdown_pct", Decimal(0), "max_drawdown_pct")
        if not Decimal(0) < pct < 100:
            raise ConfigError("max_drawdown_pct: must be above 0 and below 100")
        guards["max_drawdown_pct"] = pct
    if data.get("daily_profit_target_usdt") is not None:
        target = _decimal(data, "daily_profit_target_usdt", Decimal(0), "daily_profit_target_usdt")
        if target <= 0:
            raise ConfigError("daily_profit_target_usdt: must be positive")
        guards["daily_profit_target_usdt"] = target
    for key in ("position_size_pct", "risk_per_trade_pct"):
        if data.get(key) is not None:
            pct = _decimal(data, key, Decimal(0), key)
            if not Decimal(0) < pct <= 100:
                raise ConfigError(f"{key}: must be a percent above 0, at most 100")
            guards[key] = pct
    if "position_size_pct" in guards and "risk_per_trade_pct" in guards:
        raise ConfigError("position_size_pct and risk_per_trade_pct: set one of them, not both")
    if data.get("trailing_stop_pct") is not None:
        pct = _decimal(data, "trailing_stop_pct", Decimal(0), "trailing_stop_pct")
        if pct <= 0:
            raise ConfigError("trailing_stop_pct: must be a positive percent of margin")
        guards["trailing_stop_pct"] = pct
    if data.get("trailing_activation_pct") is not None:
        if "trailing_stop_pct" not in guards:
            raise ConfigError("trailing_activation_pct: needs trailing_stop_pct")
        pct = _decimal(data, "trailing_activation_pct", Decimal(0), "trailing_activation_pct")
        if pct < 0:
            raise ConfigError("trailing_activation_pct: must be a percent of margin, 0 or more")
        guards["trailing_activation_pct"] = pct
    guards.update(parse_keys(data))
    return guards


def _decimal(data: Mapping[str, Any], key: str, default: Decimal, name: str) -> Decimal:
    raw = data.get(key)
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal | str):
        raise ConfigError(f"{name}: must be a number")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ConfigError(f"{name}: must be a number") from None
    if not value.is_finite():
        raise ConfigError(f"{name}: must be a finite number")
    return value


def _int(data: Mapping[str, Any], key: str, default: int, name: str) -> int:
    value = _decimal(data, key, Decimal(default), name)
    if value != value.to_integral_value():
        raise ConfigError(f"{name}: must be a whole number")
    return int(value)


def _coins(data: Mapping[str, Any], key: str) -> frozenset[str]:
    raw = data.get(key)
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(coin, str) for coin in raw):
        raise ConfigError(f'{key}: must be a list of symbols like "SOLUSDT"')
    return frozenset(coin.strip().upper() for coin in raw if coin.strip())
