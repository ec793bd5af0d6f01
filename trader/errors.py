"""The exception tree of the engine.

    TradingError                 anything the engine raises on purpose
    ├── ConfigError              a bad or missing setting; the message names the key
    ├── SignalError              a signal row that cannot be parsed; ``reason`` is short
    └── ExchangeError            the exchange said no, or could not be reached
        ├── OrderRejected        rejected: the venue refused the order; report it, never retry
        │   └── NoPosition       nothing to reduce: the position is already closed
        ├── NotTradable          the venue will not trade the symbol as the bot must (a
        │                        hedge-mode symbol it refuses to switch): ``reason`` is the
        │                        short code of the signal's ``rejected:<reason>``
        ├── Retryable            the request was refused before it did anything (a 5xx, or
        │   │                    Bybit's 10002 timestamp / 10016 server error / -1), or a
        │   │                    read got no answer: back off, then a retry is safe
        │   ├── RateLimited      Bybit's 10006 / 10018 / 429, HTTP 429: wait ``retry_after``
        │   └── Banned           HTTP 403: Bybit banned this IP; no request leaves until
        │                        ``until`` (10 minutes). Never retried: an order is refused,
        │                        not queued to be sent once the ban is over
        └── OutcomeUnknown       an order was sent and no answer came (timeout, connection
                                 lost, a 5xx from a gateway, retCode -1 / 10000 / 10016):
                                 look it up by ``orderLinkId`` before anything is re-sent

The rules for an order, from Bybit's v5 error table: HTTP 403 and 429 and retCode 429 ("system
level frequency protection", "high server load, please retry") are refusals before anything was
done, so an order so answered was not placed (after a 429 it is sent again, its ``orderLinkId``
guarding against a duplicate); retCode -1 ("request expired") and a timeout or 5xx say nothing
of what happened to it, so its outcome is unknown. For a read every one of them is retried,
except the ban.

Where each Bybit answer lands is decided in one place, ``trader/exchange/bybit_wire.py``;
the back-off (0.5 s doubling, 4 attempts) is applied there too.

Messages never contain secrets (tokens, API keys or secrets).
"""

from __future__ import annotations

from datetime import datetime


class TradingError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(TradingError):
    """A setting or strategy value is missing or invalid. The message names the key."""


class SignalError(TradingError):
    """A signal row is malformed. ``reason`` is the short code stored as ``invalid:<reason>``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ExchangeError(TradingError):
    """The exchange refused a request or could not be reached."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class OrderRejected(ExchangeError):
    """The venue refused the order (bad qty, insufficient balance, ...). Never retried."""


class NoPosition(OrderRejected):
    """A reduce-only order found no position: it was closed already (e.g. by its SL/TP)."""


class NotTradable(ExchangeError):
    """The venue will not let the bot trade this symbol as it must; ``reason`` is short."""

    def __init__(self, reason: str, message: str, *, code: int | None = None) -> None:
        super().__init__(message, code=code)
        self.reason = reason


class Retryable(ExchangeError):
    """The request had no effect and may be sent again after a pause."""


class RateLimited(Retryable):
    """The venue asked us to slow down; safe to retry after ``retry_after`` seconds."""

    def __init__(
        self, message: str, *, code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Banned(Retryable):
    """The venue banned this IP (Bybit: HTTP 403, "access too frequent"): nothing is sent to
    it before ``until`` (None: not known yet). A request refused for it did nothing."""

    def __init__(self, message: str, *, until: datetime | None = None) -> None:
        super().__init__(message, code=None)
        self.until = until


class OutcomeUnknown(ExchangeError):
    """An order was sent but no answer came back; look it up by ``orderLinkId`` first."""
