"""Settings: the process environment (or ``.env``), named as in the spec. A bad one fails
with one ``ConfigError`` line naming it, never a traceback. The strategy file is
``trader.strategy``'s.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trader.errors import ConfigError

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
