"""The exception tree of the engine.

    TradingError                 anything the engine raises on purpose
    ├── ConfigError              a bad or missing setting; the message names the key
    ├── SignalError              a signal row that cannot be parsed; ``reason`` is short
    └── ExchangeError            the exchange said no, or could not be reached
        ├── OrderRejected        rejected: the venue refused the order; report it, never retry
        │   └── NoPosition       nothing to reduce: the position is already closed
        ├── Retryable            the request was refused before it did anything (a 5xx, or
        │   │                    Bybit's 10002 timestamp / 10016 server error), or a read got
        │   │                    no answer: back off, then a retry is safe
        │   └── RateLimited      Bybit's 10006 / 10018, HTTP 403: wait ``retry_after``
        └── OutcomeUnknown       an order was sent and no answer came (timeout, connection
                                 lost, a 5xx from a gateway): look it up by ``orderLinkId``
                                 before anything is re-sent

Where each Bybit answer lands is decided in one place, ``trader/exchange/bybit_wire.py``;
the back-off (0.5 s doubling, 4 attempts) is applied there too.

Messages never contain secrets (tokens, API keys or secrets).
"""

from __future__ import annotations


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


class Retryable(ExchangeError):
    """The request had no effect and may be sent again after a pause."""


class RateLimited(Retryable):
    """The venue asked us to slow down; safe to retry after ``retry_after`` seconds."""

    def __init__(
        self, message: str, *, code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class OutcomeUnknown(ExchangeError):
    """An order was sent but no answer came back; look it up by ``orderLinkId`` first."""
