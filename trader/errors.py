"""The exception tree of the engine.

    TradingError                 anything the engine raises on purpose
    ├── ConfigError              a bad or missing setting; the message names the key
    ├── SignalError              a signal row that cannot be parsed; ``reason`` is short
    └── ExchangeError            the exchange said no, or could not be reached
        ├── OrderRejected        the venue refused the order: report it, never retry
        │   └── NoPosition       nothing to reduce: the position is already closed
        ├── RateLimited          back off, then it is safe to retry
        └── OutcomeUnknown       sent, no answer: look the order up before re-sending

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


class RateLimited(ExchangeError):
    """The venue asked us to slow down; safe to retry after a pause."""


class OutcomeUnknown(ExchangeError):
    """An order was sent but no answer came back; look it up by ``orderLinkId`` first."""
