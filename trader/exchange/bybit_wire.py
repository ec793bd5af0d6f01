"""Bybit's wire conventions, shared by the public (``market``) and trading (``bybit``) adapters:
numbers arrive as decimal strings, and pybit's blocking calls fail in pybit's own classes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from pybit.exceptions import FailedRequestError, InvalidRequestError

from trader.errors import ExchangeError, OrderRejected, OutcomeUnknown, RateLimited

RATE_LIMIT_CODES = frozenset({10006, 10018})  # Bybit: too many visits / IP rate limit
DETAIL_CHARS = 200  # cap on venue text quoted in our errors


def decimal_field(value: Any, name: str) -> Decimal:
    """One of Bybit's number fields, exactly; ``ExchangeError`` naming it otherwise."""
    # Bybit sends numbers as strings; a float here would already have lost the exact value.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ExchangeError(f"Bybit sent {name}={value!r:.40}, not a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ExchangeError(f"Bybit sent {name}={value!r:.40}, not a decimal") from None
    if not number.is_finite():
        raise ExchangeError(f"Bybit sent {name}={value!r:.40}, not a finite decimal")
    return number


async def call_pybit(
    what: str, call: Callable[..., Any], *, order: bool = False, **params: Any
) -> Any:
    """One blocking pybit call in a worker thread, its failures as ``ExchangeError``s that
    quote Bybit's reason, capped, and never pybit's request line or headers.

    ``order``: the call places an order, so a refusal is ``OrderRejected`` and no answer at
    all is ``OutcomeUnknown`` (it may have been accepted: look it up before re-sending).
    """
    try:
        return await asyncio.to_thread(call, **params)
    except InvalidRequestError as exc:
        code = exc.status_code if isinstance(exc.status_code, int) else None
        detail = str(exc.message)[:DETAIL_CHARS]
        message = f"Bybit refused the {what}: {detail} (retCode {code})"
        if code in RATE_LIMIT_CODES:
            raise RateLimited(message, code=code) from None
        raise (OrderRejected if order else ExchangeError)(message, code=code) from None
    except FailedRequestError as exc:
        error = RateLimited if exc.status_code == 403 else ExchangeError
        detail = str(exc.message)[:DETAIL_CHARS]
        raise error(f"Bybit {what} failed: {detail} (HTTP {exc.status_code})") from None
    except OSError as exc:  # requests' errors are OSErrors: connection, timeout, TLS
        if order:
            raise OutcomeUnknown(f"no answer to the {what}: {type(exc).__name__}") from None
        raise ExchangeError(f"Bybit {what} unreachable: {type(exc).__name__}") from None
