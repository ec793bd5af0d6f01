"""A fake Bybit v5 on 127.0.0.1 (aiohttp): the real pybit client runs against it in tests.

Public side: server time, instruments and tickers by REST, and the linear public stream.
Private side: signed REST (API key info, wallet, positions, leverage, market orders with TP/SL,
orders, executions, closed PnL) and the private stream (order, execution, position, wallet),
over one unified account that fills market orders at the book, charges the taker fee and
triggers TP/SL on the last price. Fault injection: ``fail_next``, ``accept_then_timeout``,
``drop_private_streams``, ``pause_private_pushes``, ``set_clock_offset``.

Modules: ``market`` (instruments, tickers), ``public`` (public REST and stream), ``signing``
(keys, signatures), ``params`` (request validation), ``records`` (positions, orders, executions,
closed PnL and their Bybit shapes), ``account`` (the trading account), ``private_rest``,
``private_ws``, ``faults``, ``server`` (``FakeBybit``).
"""

from tests.fakes.bybit.account import FakeAccount
from tests.fakes.bybit.common import (
    CATEGORY,
    DEFAULT_REPLY_DELAY,
    PRIVATE_PATH,
    PUBLIC_LINEAR_PATH,
    TAKER_FEE_RATE,
    BybitError,
    ReceivedWsMessage,
    RecordedRequest,
)
from tests.fakes.bybit.market import DEFAULT_INSTRUMENTS, FakeInstrument, FakeTicker
from tests.fakes.bybit.records import FakeClosedPnl, FakeExecution, FakeOrder, FakePosition
from tests.fakes.bybit.server import FakeBybit
from tests.fakes.bybit.signing import FakeApiKey, rest_signature, ws_signature

__all__ = [
    "CATEGORY",
    "DEFAULT_INSTRUMENTS",
    "DEFAULT_REPLY_DELAY",
    "PRIVATE_PATH",
    "PUBLIC_LINEAR_PATH",
    "TAKER_FEE_RATE",
    "BybitError",
    "FakeAccount",
    "FakeApiKey",
    "FakeBybit",
    "FakeClosedPnl",
    "FakeExecution",
    "FakeInstrument",
    "FakeOrder",
    "FakePosition",
    "FakeTicker",
    "ReceivedWsMessage",
    "RecordedRequest",
    "rest_signature",
    "ws_signature",
]
