"""Settings: the process environment (or ``.env``) and the strategy file.

Both fail with one ``ConfigError`` line naming the bad key, never a traceback.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trader.errors import ConfigError
from trader.take_profits import KEYS as TAKE_PROFIT_KEYS
from trader.take_profits import Share, parse_keys

log = logging.getLogger(__name__)

BOT_TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")

NETWORK_URLS: dict[str, tuple[str, str, str]] = {
    # network: (REST, public WebSocket, private WebSocket). Demo trading serves public data
    # from mainnet's stream, as Bybit documents.
    "mainnet": (
        "https://api.bybit.com",
        "wss://stream.bybit.com/v5/public/linear",
        "wss://stream.bybit.com/v5/private",
    ),
    "testnet": (
        "https://api-testnet.bybit.com",
        "wss://stream-testnet.bybit.com/v5/public/linear",
        "wss://stream-testnet.bybit.com/v5/private",
    ),
    "demo": (
        "https://api-demo.bybit.com",
        "wss://stream.bybit.com/v5/public/linear",
        "wss://stream-demo.bybit.com/v5/private",
    ),
}


class Settings(BaseSettings):
    """Environment settings, named as in the spec (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # "KEY=" in .env.example style means unset
        extra="ignore",
        hide_input_in_errors=True,
    )

    telegram_bot_token: SecretStr
    telegram_allowed_chat_ids: Annotated[tuple[int, ...], NoDecode]
    telegram_api_url: str = "https://api.telegram.org"
    trading_mode: Literal["paper", "live"] = "paper"
    bybit_api_key: SecretStr | None = None
    bybit_api_secret: SecretStr | None = None
    bybit_network: Literal["mainnet", "testnet", "demo"] = "mainnet"
    bybit_rest_url: str | None = None
    bybit_ws_public_url: str | None = None
    bybit_ws_private_url: str | None = None
    signals_path: Path = Path("signals_log.csv")
    strategy_path: Path = Path("BYBIT_OPTIMAL_CONFIG.json")
    data_dir: Path = Path("data")
    report_interval_minutes: int = Field(default=60, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    timezone: ZoneInfo = ZoneInfo("UTC")
    health_port: int | None = Field(default=None, ge=1, le=65535)
    health_host: str = "127.0.0.1"

    @field_validator(
        "telegram_bot_token", "bybit_api_key", "bybit_api_secret", "telegram_api_url",
        "bybit_rest_url", "bybit_ws_public_url", "bybit_ws_private_url", mode="before",
    )  # fmt: skip
    @classmethod
    def _strip(cls, value: object) -> object:
        # A pasted token's trailing space or newline is not part of it.
        return value.strip() if isinstance(value, str) else value

    @field_validator("telegram_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        # Checked here, before anything starts: aiogram would print a traceback for it, and
        # the process would hang on the database thread opened before the check.
        if not BOT_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("is not a bot token (it looks like 123456789:AAE..., from @BotFather)")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # A URL without a scheme makes aiohttp fail with the whole request URL in its message,
        # and that URL holds the bot token: refuse it here, where nothing is logged.
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("telegram_allowed_chat_ids", mode="before")
    @classmethod
    def _split_chat_ids(cls, value: object) -> object:
        if isinstance(value, int):
            return (value,)
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not parts:
                raise ValueError("needs at least one chat id")
            try:
                return tuple(int(part) for part in parts)
            except ValueError:
                raise ValueError("must be comma-separated integer chat ids") from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("timezone", mode="before")
    @classmethod
    def _zone(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return ZoneInfo(value.strip())
        # "Europe" is a directory of zones (IsADirectoryError, an OSError), not one.
        except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeDecodeError):
            raise ValueError("must be an IANA time zone such as Europe/Berlin or UTC") from None

    @field_validator("trading_mode", "bybit_network", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("bybit_ws_public_url")
    @classmethod
    def _public_path(cls, value: str | None) -> str | None:
        if value is not None and not value.rstrip("/").endswith("/v5/public/linear"):
            raise ValueError("must end with /v5/public/linear")
        return value.rstrip("/") if value else value

    @field_validator("bybit_ws_private_url")
    @classmethod
    def _private_path(cls, value: str | None) -> str | None:
        if value is not None and not value.rstrip("/").endswith("/v5/private"):
            raise ValueError("must end with /v5/private")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _live_needs_keys(self) -> Settings:
        if self.trading_mode == "live":
            for name in ("bybit_api_key", "bybit_api_secret"):
                secret = getattr(self, name)
                if secret is None or not secret.get_secret_value().strip():
                    raise ConfigError(f"{name.upper()} is required when TRADING_MODE=live")
        return self

    @property
    def strategy_path_set(self) -> bool:
        """STRATEGY_PATH was given: then a file that is not there is a mistake, not a
        reason to trade the built-in defaults."""
        return "strategy_path" in self.model_fields_set

    @property
    def rest_url(self) -> str:
        return (self.bybit_rest_url or NETWORK_URLS[self.bybit_network][0]).rstrip("/")

    @property
    def ws_public_url(self) -> str:
        return self.bybit_ws_public_url or NETWORK_URLS[self.bybit_network][1]

    @property
    def ws_private_url(self) -> str:
        return self.bybit_ws_private_url or NETWORK_URLS[self.bybit_network][2]

    @property
    def db_path(self) -> Path:
        return self.data_dir / f"{self.trading_mode}.db"

    @property
    def trades_csv_path(self) -> Path:
        return self.data_dir / "trades_log.csv"


def load_settings(env_file: Path | None = Path(".env"), **overrides: Any) -> Settings:
    """Read the settings; any problem becomes one ``ConfigError`` line naming the key."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        line = _first_error_line(exc)
        if env_file is not None and not env_file.exists() and " is missing" in line:
            key = line.split(" ", 1)[0]
            line = (
                f"no {env_file} file here and {key} is not set: "
                "copy .env.example to .env and fill it in"
            )
        raise ConfigError(line) from None


def _first_error_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]).upper() or "settings"
    if isinstance(error.get("ctx", {}).get("error"), ConfigError):
        return str(error["ctx"]["error"])
    if error["type"] == "missing":
        return f"{key} is missing: set it in the environment or .env (see .env.example)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{key} is invalid: {message} (see .env.example)"


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
