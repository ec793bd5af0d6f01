"""A fake Bybit v5 on 127.0.0.1 (aiohttp): the real pybit client runs against it in tests.

Public side: server time, instruments (USDT and USDC perpetuals, dated futures) and tickers by
REST, and the linear public stream. Private side: signed REST (API key info, wallet, positions,
leverage, position mode, market orders with TP/SL, trading stop, orders, executions, closed PnL,
every list paged with cursors) and the private stream (order, execution, position, wallet), over
one unified account that fills market orders at the book (or in part), charges the taker fee,
holds Full and Partial TP/SL and a trailing stop triggered on the last price, refuses leverage
above an instrument's maxLeverage, and suffers Bybit's own exits (liquidation, ADL, delivery).
Fault injection: ``fail_next``, ``accept_then_timeout``, ``ban_ip``, ``set_rest_delay``,
``drop_private_streams``, ``pause_private_pushes``, ``drop_private_pushes``,
``set_clock_offset``.

Modules: ``market`` (instruments, tickers), ``public`` (public REST and stream), ``signing``
(keys, signatures), ``params`` (request validation), ``paging`` (cursors), ``records``
(positions), ``trades`` (orders, executions, closed PnL), ``wallet``, ``ledger`` (the books and
fills), ``modes`` (position mode per symbol), ``exits`` (Bybit's own exits), ``stops`` (trading
stop: Full and Partial TP/SL, the trailing stop, their triggers), ``account`` (orders, leverage),
``controls`` (the account's test controls), ``private_rest``, ``private_ws``, ``faults``,
``server`` (``FakeBybit``).
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
from tests.fakes.bybit.faults import BAN_BODY
from tests.fakes.bybit.market import (
    DATED_FUTURE,
    DEFAULT_INSTRUMENTS,
    USDC_PERPETUAL,
    FakeInstrument,
    FakeTicker,
)
from tests.fakes.bybit.records import FakePosition
from tests.fakes.bybit.server import FakeBybit
from tests.fakes.bybit.signing import PERMISSION_GROUPS, FakeApiKey, rest_signature, ws_signature
from tests.fakes.bybit.trades import FakeClosedPnl, FakeExecution, FakeOrder

__all__ = [
    "BAN_BODY",
    "CATEGORY",
    "DATED_FUTURE",
    "DEFAULT_INSTRUMENTS",
    "DEFAULT_REPLY_DELAY",
    "PERMISSION_GROUPS",
    "PRIVATE_PATH",
    "PUBLIC_LINEAR_PATH",
    "TAKER_FEE_RATE",
    "USDC_PERPETUAL",
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
