"""Bybit's wire conventions, shared by the public (``market``) and trading (``bybit``) adapters:
numbers arrive as decimal strings; pybit's blocking calls fail in pybit's own classes, which
are sorted here into the error taxonomy of ``trader.errors``; and the retries live here.

pybit's own retry loop is switched off for every code (it sleeps on its thread, it would
re-send an order answered -1, and after its last attempt it throws away Bybit's retCode).
Retries are ours: a ``Retryable`` answer is retried with back-off (0.5 s doubling, at most
``ATTEMPTS`` tries, never sooner than a rate limit's reset). What each answer means, from
Bybit's v5 error table:

- retCode 10006 / 10018 / 429 and HTTP 429: too many requests or "system level frequency
  protection": refused before anything was done, so retried, an order too (its
  ``orderLinkId`` makes Bybit refuse a duplicate anyway).
- retCode 10002 (timestamp outside recv_window): refused; retried, signed afresh.
- retCode -1 ("request expired"), 10000 (server timeout), 10016 (server error), a 5xx or no
  answer at all: a read is retried; an order's outcome is unknown (``OutcomeUnknown``): the
  caller looks it up by ``orderLinkId`` and never re-sends it blindly.
- HTTP 403 ("access too frequent"): Bybit banned this IP. ``Banned``, never retried: the
  ``VenueGate`` shared by every client of the host refuses each request for 10 minutes
  without sending it, and an order is refused then, not queued for later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from trader.errors import (
    Banned,
    ExchangeError,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    Retryable,
)
from trader.exchange.venue_gate import VenueGate, shared_gate

log = logging.getLogger(__name__)

# Refused before anything happened: too many visits / IP rate limit / "high server load".
RATE_LIMIT_CODES = frozenset({10006, 10018, 429})
# Refused before anything happened: 10002 request time outside the recv_window (the retry is
# signed afresh). -1 request expired, 10000 server timeout and 10016 server error also: for a
# read; for an order they prove nothing either way, so its outcome is unknown.
RETRYABLE_CODES = frozenset({-1, 10000, 10002, 10016})
ORDER_UNKNOWN_CODES = frozenset({-1, 10000, 10016})
BAN_STATUS = 403  # HTTP: "access too frequent", Bybit banned this IP
RATE_LIMIT_STATUS = 429  # HTTP: "system level frequency protection, please retry"
MAX_RATE_LIMIT_WAIT = 10.0  # seconds; an order priced for now is not sent much later
# pybit retries the retCodes in this set, and replaces an empty set by its defaults. Success
# (0) never reaches its retry check, so this set makes it retry nothing.
NO_PYBIT_RETRIES = frozenset({0})
ATTEMPTS = 4
# Bybit's "not modified" answers: the state asked for is there already.
LEVERAGE_NOT_MODIFIED = 110043
POSITION_MODE_NOT_MODIFIED = 110025
TPSL_NOT_MODIFIED = 34040
DETAIL_CHARS = 200  # cap on venue text quoted in our errors
_backoff = wait_exponential(multiplier=0.5, max=8)


class GatedHTTP(HTTP):  # type: ignore[misc]  # pybit is untyped
    """pybit's ``HTTP`` whose every request passes ``gate`` first: during a ban nothing is
    sent, and the answers tell the gate when a ban begins and ends."""

    def __init__(self, gate: VenueGate, **options: Any) -> None:
        self.gate = gate
        super().__init__(**options)

    def _submit_request(
        self, method: Any = None, path: Any = None, query: Any = None, auth: bool = False
    ) -> Any:
        sent_at = self.gate.check()  # raises Banned: the request is not sent
        try:
            answer = super()._submit_request(method=method, path=path, query=query, auth=auth)
        except (FailedRequestError, InvalidRequestError) as exc:
            if isinstance(exc, FailedRequestError) and exc.status_code == BAN_STATUS:
                self.gate.refused(f"HTTP 403 on {urlsplit(str(path)).path}")
            else:  # an answer, if a refusal: Bybit takes requests from us again
                self.gate.answered(sent_at)
            raise
        self.gate.answered(sent_at)
        return answer


def make_http(
    rest_url: str,
    *,
    gate: VenueGate | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
    recv_window: int = 5000,
    timeout: int = 10,
) -> GatedHTTP:
    """pybit's ``HTTP`` at ``rest_url`` behind ``gate`` (by default the one shared by every
    client of that host), with pybit's own retries off: for every retCode, and on no answer
    (``force_retry`` would re-send an order whose answer timed out)."""
    http = GatedHTTP(
        gate or shared_gate(rest_url),
        testnet=False,
        api_key=api_key,
        api_secret=api_secret,
        recv_window=recv_window,
        timeout=timeout,
        force_retry=False,
        retry_codes=set(NO_PYBIT_RETRIES),
        max_retries=1,
        retry_delay=0,
    )
    http.endpoint = rest_url.rstrip("/")  # pybit's HTTP has no URL parameter
    return http


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
    what: str,
    call: Callable[..., Any],
    *,
    order: bool = False,
    unchanged: int | None = None,
    **params: Any,
) -> Any:
    """One blocking pybit call in a worker thread, retried with back-off while the answer is
    ``Retryable``; its failures as ``ExchangeError``s that quote Bybit's reason, capped, and
    never pybit's request line or headers.

    ``order``: the call places an order, so a refusal is ``OrderRejected`` and no answer at
    all is ``OutcomeUnknown`` (it may have been accepted: look it up before re-sending).
    A ``Retryable`` refusal of an order is re-sent: it did nothing, and the ``orderLinkId``
    makes Bybit refuse a duplicate anyway. ``Banned`` is never retried: it fails at once.
    ``unchanged``: Bybit's "not modified" code for this request (the state asked for is there
    already): success, answered None.
    """
    retrying = AsyncRetrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=_wait,
        retry=retry_if_exception_type(Retryable) & retry_if_not_exception_type(Banned),
        reraise=True,
        before_sleep=lambda state: _log_retry(what, state),
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await _call_once(what, call, order, params)
    except ExchangeError as exc:
        if unchanged is None or exc.code != unchanged:
            raise
        return None
    raise AssertionError("unreachable: the last attempt returns or raises")


def _wait(state: RetryCallState) -> float:
    """Back-off, and never sooner than Bybit said its rate limit resets."""
    delay = float(_backoff(state))
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    if isinstance(error, RateLimited) and error.retry_after is not None:
        delay = max(delay, min(error.retry_after, MAX_RATE_LIMIT_WAIT))
    return delay


def _log_retry(what: str, state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("%s; retrying the %s in %.1f s", error, what, delay)


async def _call_once(
    what: str, call: Callable[..., Any], order: bool, params: Mapping[str, Any]
) -> Any:
    try:
        return await asyncio.to_thread(call, **params)
    except Banned as exc:  # the gate refused it: nothing was sent
        raise Banned(f"the {what} was not sent: {exc}", until=exc.until) from None
    except InvalidRequestError as exc:
        code = exc.status_code if isinstance(exc.status_code, int) else None
        detail = str(exc.message)[:DETAIL_CHARS]
        message = f"Bybit refused the {what}: {detail} (retCode {code})"
        if code in RATE_LIMIT_CODES:
            raise RateLimited(message, code=code, retry_after=_reset_in(exc.resp_headers)) from None
        if order and code in ORDER_UNKNOWN_CODES:
            raise OutcomeUnknown(message, code=code) from None
        if code in RETRYABLE_CODES:
            raise Retryable(message, code=code) from None
        raise (OrderRejected if order else ExchangeError)(message, code=code) from None
    except FailedRequestError as exc:
        status = exc.status_code if isinstance(exc.status_code, int) else 0
        message = f"Bybit {what} failed: {str(exc.message)[:DETAIL_CHARS]} (HTTP {status})"
        if status == BAN_STATUS:  # refused at Bybit's gate: an order was not placed
            # pybit's own text for it guesses at a US IP; Bybit's body says "access too frequent"
            raise Banned(f"Bybit refused the {what} with HTTP 403: this IP is banned") from None
        if status == RATE_LIMIT_STATUS:  # refused before anything happened, too
            raise RateLimited(message, retry_after=_reset_in(exc.resp_headers)) from None
        if status >= 500 or (order and status == 409):  # 409: pybit's unreadable answer
            # A gateway error after sending an order says nothing of whether it was placed.
            raise (OutcomeUnknown if order else Retryable)(message) from None
        raise ExchangeError(message) from None
    except OSError as exc:  # requests' errors are OSErrors: connection, timeout, TLS
        if order:
            raise OutcomeUnknown(f"no answer to the {what}: {type(exc).__name__}") from None
        raise Retryable(f"Bybit {what} unreachable: {type(exc).__name__}") from None


def _reset_in(headers: Any) -> float | None:
    """Seconds until Bybit's rate limit resets (``X-Bapi-Limit-Reset-Timestamp``)."""
    try:
        reset_ms = int(headers["X-Bapi-Limit-Reset-Timestamp"])
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, reset_ms / 1000 - time.time())


MAX_PAGES = 50  # a list longer than this many pages is not what a trading account holds


async def read_pages(
    what: str,
    call: Callable[..., Any],
    *,
    limit: int,
    until: Callable[[Mapping[str, Any]], bool] | None = None,
    max_pages: int = MAX_PAGES,
    **params: Any,
) -> list[Mapping[str, Any]]:
    """Every row of a paged Bybit list, following ``nextPageCursor`` with ``limit`` rows a
    page; with ``until``, stops after the page holding a row it accepts (lists come newest
    first: the rows past a time are not needed). A list without end is an ``ExchangeError``:
    reading only part of it would make what is missing look gone."""
    rows: list[Mapping[str, Any]] = []
    cursor = ""
    for _ in range(max_pages):
        asked = dict(params, limit=limit, **({"cursor": cursor} if cursor else {}))
        response = await call_pybit(what, call, **asked)
        result = response.get("result") if isinstance(response, Mapping) else None
        if not isinstance(result, Mapping):
            raise ExchangeError(f"Bybit sent a {what} response without a result")
        page = [row for row in result.get("list") or [] if isinstance(row, Mapping)]
        rows += page
        cursor = str(result.get("nextPageCursor") or "")
        if not cursor or not page or (until is not None and any(until(r) for r in page)):
            return rows
    if until is not None:
        log.warning("%s: stopped reading after %d pages", what, max_pages)
        return rows
    raise ExchangeError(f"Bybit's {what} list did not end after {max_pages} pages")
