"""``python -m bot``: start the trader from the environment (or ``.env``).

A missing or bad setting exits with code 2 and one line naming it; never a traceback.
"""

from __future__ import annotations

import asyncio
import sys

from bot import logs, redact
from trader.errors import ConfigError
from trader.settings import load_settings


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"bot: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    token = settings.telegram_bot_token.get_secret_value()
    redact.install(
        [
            token,
            token.partition(":")[2],
            settings.bybit_api_key.get_secret_value() if settings.bybit_api_key else "",
            settings.bybit_api_secret.get_secret_value() if settings.bybit_api_secret else "",
        ]
    )
    from bot.app import run  # after logging is set up

    try:
        asyncio.run(run(settings))
    except ConfigError as exc:
        print(f"bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
