"""What every part of the fake Telegram shares: Telegram's error type and answers, a request's
parameters as they arrive, the call record, and users and chats as Telegram sends them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# Parameters aiogram sends as JSON strings; recorded decoded.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "commands",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "scope",
        "media",
    }
)


@dataclass(frozen=True)
class Call:
    """One Bot API request. ``params`` are as sent (strings), with the JSON-valued ones
    (``reply_markup``, ``commands``, ...) decoded and uploaded files as ``bytes``."""

    method: str
    params: dict[str, Any]
    ok: bool
    at: float  # time.monotonic() when the request arrived
    status: int = 200
    description: str | None = None


class ApiError(Exception):
    """A request Telegram refuses: answered with HTTP ``status`` and its error JSON."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def error_response(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


class Params:
    """A request's fields (strings) and uploaded parts (bytes)."""

    def __init__(self, fields: dict[str, str], files: dict[str, bytes]) -> None:
        self.fields = fields
        self.files = files

    def text(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if value else None

    def integer(self, key: str, missing: str | None = None) -> int | None:
        value = self.fields.get(key)
        if not value:
            if missing is not None:
                raise bad_request(missing)
            return None
        try:
            return int(value)
        except ValueError:
            raise bad_request(f"invalid {key} specified") from None

    def number(self, key: str) -> float | None:
        value = self.fields.get(key)
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            raise bad_request(f"invalid {key} specified") from None

    def flag(self, key: str) -> bool:
        return self.fields.get(key, "").lower() in ("true", "1")

    def json(self, key: str, error: str) -> Any:
        value = self.fields.get(key)
        if value is None:
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(error) from None

    def upload(self, key: str) -> bytes | None:
        """The file sent for ``key``: an ``attach://name`` reference or a part named ``key``."""
        value = self.fields.get(key, "")
        if value.startswith("attach://"):
            return self.files.get(value.removeprefix("attach://"))
        return self.files.get(key)

    def recorded(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        attached: set[str] = set()
        for key, value in self.fields.items():
            name = value.removeprefix("attach://")
            if value.startswith("attach://") and name in self.files:
                out[key] = self.files[name]
                attached.add(name)
            elif key in _JSON_FIELDS:
                try:
                    out[key] = json.loads(value)
                except ValueError:
                    out[key] = value
            else:
                out[key] = value
        for key, data in self.files.items():
            if key not in attached:
                out[key] = data
        return out


async def read_params(request: web.Request) -> Params:
    """The request's parameters from the query string and a urlencoded, multipart or JSON body."""
    fields: dict[str, str] = dict(request.query)
    files: dict[str, bytes] = {}
    if not request.can_read_body:
        return Params(fields, files)
    try:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise bad_request("parameters must be a JSON object")
            for key, value in body.items():
                fields[key] = value if isinstance(value, str) else json.dumps(value)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                elif isinstance(value, (bytes, bytearray)):
                    files[key] = bytes(value)
                else:
                    fields[key] = value
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request Entity Too Large") from None
    except ValueError:
        raise bad_request("can't parse request body") from None
    return Params(fields, files)


def user_json(user_id: int) -> dict[str, Any]:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": "Tester",
        "username": f"user{abs(user_id)}",
        "language_code": "en",
    }


def chat_json(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": "Tester"}
