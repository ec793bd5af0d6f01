"""The fake bot's identity and command menu: getMe, and set/get/deleteMyCommands with
Telegram's checks on command names and descriptions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram.common import Params, bad_request


class Profile:
    """Mixin of ``FakeTelegram``: who the bot is, and the commands it lists."""

    # Provided by FakeTelegram.
    bot_id: int
    bot_username: str
    _log: Callable[..., None]

    def _init_profile(self) -> None:
        self._commands: list[tuple[str, str]] = []

    @property
    def commands(self) -> list[tuple[str, str]]:
        """(command, description) of the last setMyCommands."""
        return list(self._commands)

    def _bot_user(self) -> dict[str, Any]:
        name = self.bot_username.removesuffix("_bot").removesuffix("bot").replace("_", " ")
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": f"{name.title().strip() or 'Test'} Bot",
            "username": self.bot_username,
        }

    async def _get_me(self, params: Params) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _set_my_commands(self, params: Params) -> bool:
        commands = params.json("commands", "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        parsed: list[tuple[str, str]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand")
            command, description = str(item.get("command", "")), str(item.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            parsed.append((command, description))
        self._commands = parsed
        self._log("bot set commands:", [f"/{c} — {d}" for c, d in parsed] or ["(none)"])
        return True

    async def _get_my_commands(self, params: Params) -> list[dict[str, str]]:
        return [{"command": c, "description": d} for c, d in self._commands]

    async def _delete_my_commands(self, params: Params) -> bool:
        self._commands = []
        self._log("bot deleted its commands")
        return True
