"""Fault injection for the fake Telegram: answer the next calls of a method (or of any) with an
HTTP error and Telegram's error JSON, e.g. 502, 429 with ``retry_after``, 403 blocked by the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from tests.fakes.telegram.common import ApiError
from tests.fakes.telegram.updates import CONFLICT

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: CONFLICT,
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class _Failure:
    method: str  # lower case, or "*"
    status: int
    remaining: int | None
    retry_after: int | None
    description: str


class Faults:
    """Mixin of ``FakeTelegram``: failures injected by tests, taken by the request handler."""

    def _init_faults(self) -> None:
        self._failures: list[_Failure] = []

    def fail(
        self,
        method: str,
        status: int = 502,
        *,
        times: int | None = None,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (None: until ``clear_failures``) with
        HTTP ``status`` and Telegram's error JSON. ``"*"`` is any method but getUpdates; a rule
        for the method itself goes first. A 429 carries ``parameters.retry_after`` (default 1).
        """
        if status < 400:
            raise ValueError(f"status must be an error status, not {status}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None)")
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after}"
            elif status in _DEFAULT_DESCRIPTIONS:
                description = _DEFAULT_DESCRIPTIONS[status]
            else:
                try:
                    description = HTTPStatus(status).phrase
                except ValueError:
                    description = f"Error {status}"
        name = method if method == "*" else method.lower()
        self._failures.append(_Failure(name, status, times, retry_after, description))

    def clear_failures(self) -> None:
        self._failures.clear()

    def _take_failure(self, method: str) -> ApiError | None:
        """The injected failure for this call of ``method``, if any; counts it."""
        name = method.lower()
        rule = next((f for f in self._failures if f.method == name), None)
        if rule is None and name != "getupdates":
            rule = next((f for f in self._failures if f.method == "*"), None)
        if rule is None:
            return None
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._failures.remove(rule)
        return ApiError(rule.status, rule.description, rule.retry_after)
