"""Environment settings and the strategy file: defaults, and one clear line on bad input."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from trader.errors import ConfigError
from trader.settings import load_settings
from trader.strategy import Strategy, load_strategy, parse_strategy

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "BYBIT_OPTIMAL_CONFIG.json"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in (
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_ALLOWED_CHAT_IDS",
        "TRADING_MODE",
        "BYBIT_API_KEY",
        "BYBIT_API_SECRET",
        "BYBIT_NETWORK",
        "BYBIT_REST_URL",
        "BYBIT_WS_PUBLIC_URL",
        "BYBIT_WS_PRIVATE_URL",
        "LOG_LEVEL",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sample_strategy_reads_as_the_generator_writes_it() -> None:
    strategy = load_strategy(SAMPLE)
    assert strategy.leverage == 50
    assert (strategy.sl_pct, strategy.tp_pct) == (Decimal(40), Decimal(75))
    assert strategy.top_coins == {"DOGEUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "BTCUSDT"}
    assert strategy.excluded_coins == {"YFIUSDT"}
    assert strategy.fee_rate == Decimal("0.00055")  # exact, never via float
    assert strategy.max_open_positions == 15
    assert strategy.max_daily_loss_usdt == 500


def test_missing_strategy_file_gives_builtin_defaults(tmp_path: Path) -> None:
    assert load_strategy(tmp_path / "absent.json") == Strategy()


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"parameters": {"leverage": 0}}, "parameters.leverage"),
        ({"parameters": {"leverage": "x"}}, "parameters.leverage"),
        ({"parameters": {"sl": -1}}, "parameters.sl"),
        ({"parameters": {"leverage": 2, "tp": 300}}, "parameters.tp"),
        ({"fee_rate": 0.5}, "fee_rate"),
        ({"min_confidence": 2}, "min_confidence"),
        ({"max_open_positions": 1.5}, "max_open_positions"),
        ({"max_daily_loss_usdt": 0}, "max_daily_loss_usdt"),
        ({"top_coins": "SOLUSDT"}, "top_coins"),
    ],
)
def test_invalid_strategy_value_names_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_strategy(data)


def test_unknown_strategy_keys_are_ignored_and_ours_are_read() -> None:
    strategy = parse_strategy({"whatever": 1, "position_size_usdt": "25", "paper_balance_usdt": 5})
    assert strategy.position_size_usdt == 25
    assert strategy.paper_balance_usdt == 5


def test_broken_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        load_strategy(path)
    assert "\n" not in str(info.value)


def test_missing_token_names_it_and_points_to_the_example(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match=r"TELEGRAM_BOT_TOKEN is missing.*\.env\.example"):
        load_settings(env_file=None)


def test_settings_from_dotenv_with_comma_separated_chat_ids(clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        "TELEGRAM_BOT_TOKEN=123:secret-token\nTELEGRAM_ALLOWED_CHAT_IDS=111, -222\n"
        "BYBIT_NETWORK=testnet\n"
    )
    settings = load_settings(env_file=clean_env / ".env")
    assert settings.telegram_allowed_chat_ids == (111, -222)
    assert settings.trading_mode == "paper"
    assert settings.rest_url == "https://api-testnet.bybit.com"
    assert settings.ws_public_url.endswith("/v5/public/linear")
    assert "secret-token" not in repr(settings)
    assert settings.db_path == Path("data/paper.db")


def test_bad_chat_ids_are_named_without_echoing_secrets(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            env_file=None, telegram_bot_token="123:secret-token", telegram_allowed_chat_ids="12,abc"
        )
    assert "TELEGRAM_ALLOWED_CHAT_IDS" in str(info.value)
    assert "secret-token" not in str(info.value)


def test_live_mode_needs_keys(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match="BYBIT_API_KEY is required"):
        load_settings(
            env_file=None,
            telegram_bot_token="1:t",
            telegram_allowed_chat_ids="1",
            trading_mode="live",
        )


def test_url_overrides_must_end_with_the_stream_path(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match="BYBIT_WS_PUBLIC_URL"):
        load_settings(
            env_file=None,
            telegram_bot_token="1:t",
            telegram_allowed_chat_ids="1",
            bybit_ws_public_url="ws://127.0.0.1:9/wrong",
        )
    settings = load_settings(
        env_file=None,
        telegram_bot_token="1:t",
        telegram_allowed_chat_ids="1",
        bybit_rest_url="http://127.0.0.1:9000/",
        bybit_ws_public_url="ws://127.0.0.1:9000/v5/public/linear",
    )
    assert settings.rest_url == "http://127.0.0.1:9000"


def test_strategy_json_round_trip_of_sample(tmp_path: Path) -> None:
    data = json.loads(SAMPLE.read_text())
    data["parameters"]["leverage"] = 10
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    assert load_strategy(path).leverage == 10


def test_the_example_env_with_required_values_filled_in_loads(clean_env: Path) -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    text = example.replace("TELEGRAM_BOT_TOKEN=\n", "TELEGRAM_BOT_TOKEN=1:x\n").replace(
        "TELEGRAM_ALLOWED_CHAT_IDS=\n", "TELEGRAM_ALLOWED_CHAT_IDS=42\n"
    )
    (clean_env / ".env").write_text(text)
    settings = load_settings(env_file=clean_env / ".env")
    assert settings.bybit_api_key is None
    assert settings.bybit_ws_public_url is None
    assert settings.telegram_allowed_chat_ids == (42,)


def test_the_example_env_as_shipped_names_the_missing_token(clean_env: Path) -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN is missing"):
        load_settings(env_file=example)


def test_a_telegram_api_url_without_a_scheme_is_refused_with_one_line() -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_API_URL") as caught:
        load_settings(
            env_file=None,
            telegram_bot_token="1:secret",
            telegram_allowed_chat_ids="1",
            telegram_api_url="api.telegram.org",
        )
    assert "http://" in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("token", ["abc", "123456", ":abc", "12:ab c"])
def test_a_malformed_bot_token_is_one_line_naming_the_setting(clean_env: Path, token: str) -> None:
    with pytest.raises(ConfigError, match=r"^TELEGRAM_BOT_TOKEN is invalid: is not a bot token"):
        load_settings(env_file=None, telegram_bot_token=token, telegram_allowed_chat_ids="1")


def test_a_pasted_token_with_a_trailing_newline_is_stripped(clean_env: Path) -> None:
    settings = load_settings(
        env_file=None, telegram_bot_token=" 123:ABC-def_9 \n", telegram_allowed_chat_ids="1"
    )
    assert settings.telegram_bot_token.get_secret_value() == "123:ABC-def_9"


def test_a_strategy_path_that_was_set_must_exist(clean_env: Path, tmp_path: Path) -> None:
    missing = tmp_path / "BYBIT_OPTIMAL_CONFG.json"
    settings = load_settings(
        env_file=None,
        telegram_bot_token="1:t",
        telegram_allowed_chat_ids="1",
        strategy_path=missing,
    )
    assert settings.strategy_path_set
    with pytest.raises(ConfigError, match=r"^STRATEGY_PATH .* does not exist"):
        load_strategy(settings.strategy_path, required=settings.strategy_path_set)
    default = load_settings(env_file=None, telegram_bot_token="1:t", telegram_allowed_chat_ids="1")
    assert not default.strategy_path_set  # absent and not asked for: the built-in defaults


def test_unknown_strategy_keys_are_named_with_the_nearest_known_one() -> None:
    strategy = parse_strategy(
        {
            "parameters": {"levrage": 50, "sl": 20, "tp": 40},
            "max_open_positon": 3,
            "version": "2.1",
            "performance": {"roi": 1},
            "colour": "blue",
        }
    )
    assert strategy.warnings == (
        "unknown key max_open_positon is ignored; did you mean max_open_positions?",
        "unknown key colour is ignored",
        "unknown key parameters.levrage is ignored; did you mean parameters.leverage?",
    )
    assert strategy.leverage == 10  # the typo'd key did not set it


@pytest.mark.parametrize("zone", ["Mars/Base", "Europe", "America", "Etc", "../etc/passwd"])
def test_a_timezone_that_is_not_one_is_one_line_naming_the_setting(
    clean_env: Path, zone: str
) -> None:
    with pytest.raises(ConfigError, match=r"^TIMEZONE is invalid") as caught:
        load_settings(
            env_file=None, telegram_bot_token="1:t", telegram_allowed_chat_ids="1", timezone=zone
        )
    assert "\n" not in str(caught.value)


def test_a_timezone_is_read_by_its_iana_name(clean_env: Path) -> None:
    settings = load_settings(
        env_file=None,
        telegram_bot_token="1:t",
        telegram_allowed_chat_ids="1",
        timezone=" Asia/Dubai ",
    )
    assert settings.timezone.key == "Asia/Dubai"


def test_the_guards_are_off_unless_the_file_sets_them() -> None:
    assert Strategy().max_drawdown_pct is None
    strategy = parse_strategy(
        {
            "cooldown_minutes_after_loss": 30,
            "max_drawdown_pct": 20,
            "daily_profit_target_usdt": "150.5",
        }
    )
    assert strategy.cooldown_minutes_after_loss == 30
    assert strategy.max_drawdown_pct == Decimal(20)
    assert strategy.daily_profit_target_usdt == Decimal("150.5")
    assert strategy.warnings == ()
    for bad in (
        {"cooldown_minutes_after_loss": 0},
        {"max_drawdown_pct": 100},
        {"daily_profit_target_usdt": -5},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            parse_strategy(bad)
