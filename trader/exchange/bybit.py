"""Live trading on Bybit v5 (unified account, category linear) through pybit.

The only module that trades with keys. Every pybit call runs in a worker thread
(``bybit_wire.call_pybit``); Bybit's shapes are parsed in ``bybit_private`` and here, one
function per message, and go no further.

Fills and closes come from the private stream (``execution``, ``order``, ``position``): an
order's fill is complete when its ``order`` push is final and its executions add up to its
``cumExecQty``. While the stream is down, REST covers both: fills are read back by
``orderLinkId`` and positions are polled every ``poll_interval`` seconds. When the stream comes
back, ``StreamRestored`` asks the engine to reconcile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trader.clock import Clock
from trader.errors import (
    ConfigError,
    ExchangeError,
    NoPosition,
    OrderRejected,
    OutcomeUnknown,
)
from trader.events import ClockSkewed
from trader.exchange.base import (
    Listener,
    MarketData,
    PositionExited,
    PriceUpdated,
    StopLossMissing,
    StreamRestored,
    VenuePosition,
)
from trader.exchange.bybit_clock import measure_offset
from trader.exchange.bybit_fills import Pushes
from trader.exchange.bybit_messages import (
    CATEGORY,
    SETTLE_COIN,
    OrderUpdate,
    parse_closed_pnl,
    parse_execution,
    parse_order,
    parse_permissions,
    parse_position,
    parse_rows,
    parse_wallet,
    result_of,
    rows_of,
)
from trader.exchange.bybit_private import PrivateStream
from trader.exchange.bybit_symbols import PreparedSymbols
from trader.exchange.bybit_wire import call_pybit, make_http, read_pages
from trader.exchange.venue_gate import VenueGate
from trader.models import (
    CloseReason,
    EntryOrder,
    ExitOrder,
    Fill,
    Instrument,
    Position,
    Ticker,
)

log = logging.getLogger(__name__)

POSITION_MODE_NOT_MODIFIED = 110025
REDUCE_ONLY_NOTHING_TO_CLOSE = 110017
TPSL_NOT_MODIFIED = 34040
DUPLICATE_LINK_ID = 110072  # an order with this orderLinkId exists: a send that got through
STREAM_GRACE = 1.0  # seconds to wait for pushes before asking REST
REST_POLL = 0.25  # seconds between REST reads of an order's fill
# Page sizes: Bybit's maxima, so that a list is read in as few round trips as it allows.
POSITION_PAGE = 200
EXECUTION_PAGE = 100
CLOSED_PNL_PAGE = 100


# --- the adapter -------------------------------------------------------------------------------


class BybitExchange:
    """Live trading: market orders with SL/TP attached on Bybit, one-way positions."""

    mode = "live"

    def __init__(
        self,
        market: MarketData,
        *,
        rest_url: str,
        ws_private_url: str | None,
        api_key: str,
        api_secret: str,
        clock: Clock,
        recv_window: int = 5000,
        timeout: int = 10,
        poll_interval: float = 1.0,
        fill_timeout: float = 5.0,
        gate: VenueGate | None = None,
    ) -> None:
        """``ws_private_url`` None: no private stream, REST polling only. ``gate``: the ban
        state shared with the market data's client (by default, the one of ``rest_url``)."""
        self._market = market
        self._clock = clock
        self._recv_window = recv_window
        self._poll_interval = poll_interval
        self._fill_timeout = fill_timeout
        self._http = make_http(
            rest_url,
            gate=gate,
            api_key=api_key,
            api_secret=api_secret,
            recv_window=recv_window,
            timeout=timeout,
        )
        self._stream = (
            PrivateStream(
                ws_private_url,
                api_key,
                api_secret,
                on_push=self._on_push,
                on_restored=self._on_restored,
                server_offset_ms=lambda: self._clock_skew_ms or 0,
            )
            if ws_private_url
            else None
        )
        self._pushes = Pushes()
        self._listener: Listener | None = None
        self._clock_skew_ms: int | None = None  # Bybit's clock minus ours, once measured
        self._leave_gate: Callable[[], None] = lambda: None
        # Symbol → since when we hold a position there (a close counts from then on).
        self._held: dict[str, datetime] = {}
        self._closing: set[str] = set()
        self._settling: set[str] = set()
        self._placing: set[str] = set()  # entries sent, fill not yet known
        self._flat: dict[str, datetime] = {}  # symbol → time of its last push, if flat
        self._sizes: dict[str, Decimal] = {}  # symbol → the size Bybit last said it holds
        self._booked: set[str] = set()  # exits reported (order ids, "exec:" + exec id)
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._symbols = PreparedSymbols(self._http, market)  # leverage, mode, stream

    # --- life cycle ----------------------------------------------------------------------

    async def start(self, listener: Listener) -> None:
        """Check the account before anything trades; ``ConfigError`` refuses a bad key."""
        self._listener = listener
        self._leave_gate = self._http.gate.subscribe(listener)  # bans, told as they happen
        await self.check_account()
        await self._market.start(self._on_ticker)
        if self._stream is not None:
            await self._stream.start()
        self._poller = asyncio.create_task(self._poll_exits(), name="bybit-exit-poller")

    async def stop(self) -> None:
        self._leave_gate()
        if self._stream is not None:  # first: no push may start new work after this
            await self._stream.stop()
        tasks = [t for t in (self._poller, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._market.stop()
        await asyncio.to_thread(self._http.client.close)

    @property
    def stream_healthy(self) -> bool:
        return self._stream is not None and self._stream.healthy

    async def drop_stream(self) -> None:
        """Close the private stream; it reconnects, and the engine reconciles."""
        if self._stream is not None:
            await self._stream.drop()

    @property
    def clock_skew_ms(self) -> int | None:
        """Bybit's clock minus ours in ms (positive: ours is behind), measured at start-up;
        None before that."""
        return self._clock_skew_ms

    async def check_account(self) -> None:
        skew = await measure_offset(self._http)
        self._clock_skew_ms = skew.offset_ms  # the private login allows for it from now on
        if skew.reported:
            log.warning(
                "this machine's clock is %+d ms off Bybit's (round trip %d ms; recv window "
                "%d ms): synchronise it with NTP",
                skew.offset_ms,
                skew.round_trip_ms,
                self._recv_window,
            )
            if self._listener is not None:
                self._listener(ClockSkewed(skew.offset_ms, skew.round_trip_ms, self._clock.now()))
        key = await call_pybit("API key information", self._http.get_api_key_information)
        refusal = parse_permissions(result_of(key)).refusal()
        if refusal is not None:
            raise ConfigError(f"{refusal}: refusing to trade; use a key with trade rights only")
        try:
            await call_pybit(
                "position mode",
                self._http.switch_position_mode,
                category=CATEGORY,
                coin=SETTLE_COIN,
                mode=0,
            )
        except ExchangeError as exc:
            if exc.code != POSITION_MODE_NOT_MODIFIED:
                raise ConfigError(f"Bybit could not switch to one-way mode: {exc}") from None
        log.info("Bybit account checked; wallet %s USDT", await self.balance())

    async def adopt(self, positions: Sequence[Position]) -> None:
        for position in positions:
            self._held[position.symbol] = position.opened_at
            self._sizes[position.symbol] = position.qty
            await self._market.watch(position.symbol)

    # --- market data -----------------------------------------------------------------------

    async def instrument(self, symbol: str) -> Instrument:
        return await self._market.instrument(symbol)

    async def ticker(self, symbol: str) -> Ticker:
        return await self._market.ticker(symbol)

    def _on_ticker(self, ticker: Ticker) -> None:
        if self._listener is not None:
            self._listener(PriceUpdated(ticker))

    # --- orders ------------------------------------------------------------------------------

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        await self._symbols.set_leverage(symbol, leverage)

    async def prepare(self, symbols: Sequence[str], leverage: int) -> None:
        await self._symbols.prepare(symbols, leverage)

    async def prepare_entry(self, symbol: str, leverage: int) -> Ticker:
        return await self._symbols.prepare_entry(symbol, leverage)

    async def set_stop_loss(self, symbol: str, price: Decimal) -> None:
        """The stop-loss of the whole position, through ``/v5/position/trading-stop``;
        Bybit's "not modified" (34040) means it is there already."""
        try:
            await call_pybit(
                "stop-loss",
                self._http.set_trading_stop,
                category=CATEGORY,
                symbol=symbol,
                stopLoss=_wire(price),
                tpslMode="Full",
                slTriggerBy="LastPrice",
                positionIdx=0,
            )
        except ExchangeError as exc:
            if exc.code != TPSL_NOT_MODIFIED:
                raise

    async def open(self, order: EntryOrder) -> Fill:
        # Nothing before the order: prepare_entry() has readied the symbol (bybit_symbols).
        params = {
            "category": CATEGORY,
            "symbol": order.symbol,
            "side": order.side.value,
            "orderType": "Market",
            "qty": _wire(order.qty),
            "positionIdx": 0,
            "orderLinkId": order.link_id,
            "stopLoss": _wire(order.stop_loss),
            "takeProfit": _wire(order.take_profit),
            "tpslMode": "Full",
            "slTriggerBy": "LastPrice",
            "tpTriggerBy": "LastPrice",
        }
        # Marked from before sending: an SL/TP push may beat the order's own answer.
        self._placing.add(order.symbol)
        try:
            await self._place(params, order.link_id)
            fill = await self._sent_order_fill(order.link_id, order.symbol)
        finally:
            self._placing.discard(order.symbol)
        self._held[order.symbol] = fill.at
        self._sizes[order.symbol] = fill.qty
        flat_at = self._flat.get(order.symbol)
        if flat_at is not None and flat_at >= fill.at:
            self._spawn_settle(order.symbol)  # closed again while we waited for the fill
        return fill

    async def close(self, order: ExitOrder) -> Fill:
        params = {
            "category": CATEGORY,
            "symbol": order.symbol,
            "side": order.side.value,
            "orderType": "Market",
            "qty": _wire(order.qty),
            "positionIdx": 0,
            "reduceOnly": True,
            "orderLinkId": order.link_id,
        }
        self._closing.add(order.symbol)
        try:
            try:
                await self._place(params, order.link_id)
            except OrderRejected as exc:
                if exc.code == REDUCE_ONLY_NOTHING_TO_CLOSE:
                    # Its SL/TP (or a hand) got there first: settle that close instead.
                    self._spawn_settle(order.symbol)
                    raise NoPosition(str(exc), code=exc.code) from None
                raise
            try:
                fill = await self._sent_order_fill(order.link_id, order.symbol)
            except ExchangeError:
                if self._flat_since_held(order.symbol):
                    self._spawn_settle(order.symbol)  # flat after all: settle from Bybit
                raise
            order_id = self._pushes.by_link.get(order.link_id)
            if order_id:
                self._booked.add(order_id)  # the engine books it: never a second time
            # Filled in part (an IOC order meets its price band): the rest stays held.
            if fill.qty >= order.qty or self._flat_since_held(order.symbol):
                self._held.pop(order.symbol, None)
            return fill
        finally:
            self._closing.discard(order.symbol)

    def _flat_since_held(self, symbol: str) -> bool:
        flat_at, since = self._flat.get(symbol), self._held.get(symbol)
        return flat_at is not None and since is not None and flat_at >= since

    async def _sent_order_fill(self, link_id: str, symbol: str) -> Fill:
        """The fill of an order Bybit accepted. From here on any failure but a refusal means
        the outcome is unknown: the order may have filled, so it must be looked up, never
        taken as not placed."""
        try:
            return await self._await_fill(link_id, symbol)
        except (OrderRejected, OutcomeUnknown):
            raise
        except ExchangeError as exc:
            raise OutcomeUnknown(f"order {link_id} for {symbol} was sent; {exc}") from None

    async def _place(self, params: dict[str, Any], link_id: str) -> None:
        """Send an order once. After no answer it is looked up by ``orderLinkId``: found
        means accepted, and it is never sent again."""
        try:
            await call_pybit("order", self._http.place_order, order=True, **params)
        except (OutcomeUnknown, OrderRejected) as exc:
            if isinstance(exc, OrderRejected) and exc.code != DUPLICATE_LINK_ID:
                raise
            # No answer, or "duplicate orderLinkId" (an earlier try got through after all).
            log.warning("order %s: %s; looking it up by orderLinkId", link_id, exc)
            try:
                found = await self._order_row(link_id=link_id)
            except ExchangeError as lookup:
                raise OutcomeUnknown(f"{exc}; the lookup failed too: {lookup}") from None
            if found is None:
                raise OutcomeUnknown(str(exc), code=exc.code) from None
            log.info("order %s was accepted after all", link_id)

    async def _order_row(self, *, link_id: str = "", order_id: str = "") -> OrderUpdate | None:
        """The order by ``orderLinkId`` or else ``orderId``: recent ones, then the order
        history (Bybit's realtime list can lose closed orders after a restart of its own)."""
        key: dict[str, Any] = {"orderLinkId": link_id} if link_id else {"orderId": order_id}
        for what, call in (
            ("order lookup", self._http.get_open_orders),
            ("order history", self._http.get_order_history),
        ):
            response = await call_pybit(what, call, category=CATEGORY, **key)
            orders = parse_rows(rows_of(response), parse_order)
            if orders:
                return orders[0]  # type: ignore[no-any-return]
        return None

    async def _await_fill(self, link_id: str, symbol: str) -> Fill:
        """The order's whole fill: from the stream's pushes, or read back by REST when they
        do not come (the stream is down, or a push was lost)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._fill_timeout
        rest_after = loop.time() + (STREAM_GRACE if self.stream_healthy else 0.0)
        while True:
            order_id = self._pushes.by_link.get(link_id)
            fill = self._pushes.fill_of(order_id) if order_id else None
            if fill is None and loop.time() >= rest_after:
                try:
                    fill = await self._rest_fill(link_id)
                except OrderRejected:
                    raise
                except ExchangeError as exc:  # keep trying until the deadline
                    log.warning("reading the fill of %s failed: %s", link_id, exc)
            if fill is not None:
                return fill
            if loop.time() >= deadline:
                raise OutcomeUnknown(f"order {link_id} for {symbol} shows no fill yet")
            await self._pushes.changed(REST_POLL if loop.time() >= rest_after else STREAM_GRACE)

    async def _rest_fill(self, link_id: str) -> Fill | None:
        """The order and its executions by REST, fed through the same bookkeeping."""
        update = await self._order_row(link_id=link_id)
        if update is None:
            return None
        response = await call_pybit(
            "executions", self._http.get_executions, category=CATEGORY, orderLinkId=link_id
        )
        for execution in parse_rows(rows_of(response), parse_execution):
            self._pushes.add_execution(execution)
        return await self._book_order(update)

    async def _book_order(self, update: OrderUpdate) -> Fill | None:
        """Record an order read by REST (its executions are in already) and return its fill:
        a final order that closed something gets Bybit's closed PnL first."""
        executions = self._pushes.executions.get(update.order_id, {}).values()
        closing = any(e.closed_size > 0 for e in executions)
        if closing and update.closed_pnl is None and update.terminal and update.cum_exec_qty > 0:
            order_id = update.order_id
            rows = await read_pages(
                "closed PnL",
                self._http.get_closed_pnl,
                limit=CLOSED_PNL_PAGE,
                until=lambda row: str(row.get("orderId")) == order_id,
                category=CATEGORY,
                symbol=update.symbol,
            )
            update = replace(update, closed_pnl=parse_closed_pnl(rows, order_id))
        self._pushes.add_order(update)
        return self._pushes.fill_of(update.order_id)

    async def balance(self) -> Decimal:
        response = await call_pybit(
            "wallet balance",
            self._http.get_wallet_balance,
            accountType="UNIFIED",
            coin=SETTLE_COIN,
        )
        return parse_wallet(result_of(response))

    # --- reconciliation ----------------------------------------------------------------------

    async def positions(self) -> list[VenuePosition]:
        rows = await read_pages(
            "positions",
            self._http.get_positions,
            limit=POSITION_PAGE,
            category=CATEGORY,
            settleCoin=SETTLE_COIN,
        )
        found: list[VenuePosition] = parse_rows(rows, parse_position)
        return [p for p in found if p.qty > 0]

    async def find_order(self, link_id: str) -> Fill | None:
        try:
            fill = await self._rest_fill(link_id)
        except OrderRejected:
            return None  # it ended with nothing filled
        if fill is None and link_id in self._pushes.by_link:
            # Bybit has the order but it has not finished: not "never placed".
            raise ExchangeError(f"order {link_id} has not finished on Bybit yet")
        return fill

    async def exits_since(self, symbol: str, since: datetime) -> list[tuple[Fill, CloseReason]]:
        return [(fill, reason) for _, fill, reason in await self._rest_exits(symbol, since)]

    async def _rest_exits(
        self, symbol: str, since: datetime
    ) -> list[tuple[str, Fill, CloseReason]]:
        """Exits of ``symbol`` after ``since`` read by REST (every page back to ``since``) and
        fed through the same bookkeeping as pushes; each order read with its closed PnL."""
        rows = await read_pages(
            "executions",
            self._http.get_executions,
            limit=EXECUTION_PAGE,
            until=lambda row: _ms_of(row, "execTime") < since,
            category=CATEGORY,
            symbol=symbol,
        )
        closing = [
            e for e in parse_rows(rows, parse_execution) if e.closed_size > 0 and e.at >= since
        ]
        for execution in closing:
            self._pushes.add_execution(execution)
        for order_id in dict.fromkeys(e.order_id for e in closing if e.order_id):
            if order_id in self._booked:
                continue
            update = await self._order_row(order_id=order_id)
            if update is not None:
                await self._book_order(update)
        return self._pushes.closes_since(symbol, since, self._booked, orderless=True) or []

    # --- what the stream pushes --------------------------------------------------------------

    def _on_push(self, topic: str, rows: list[Mapping[str, Any]]) -> None:
        """A private push, on the loop."""
        if topic == "execution":
            for execution in parse_rows(rows, parse_execution):
                self._pushes.add_execution(execution)
        elif topic == "order":
            for update in parse_rows(rows, parse_order):
                self._pushes.add_order(update)
        elif topic == "position":
            for position in parse_rows(rows, parse_position):
                self._on_position(position)

    def _on_position(self, position: VenuePosition) -> None:
        symbol = position.symbol
        if position.qty > 0:
            self._flat.pop(symbol, None)
        else:
            self._flat[symbol] = position.updated_at or self._clock.now()
        known = self._sizes.get(symbol)
        self._sizes[symbol] = position.qty
        if not self._exchange_made(symbol):
            return
        if position.qty > 0 and position.stop_loss is None and self._listener is not None:
            self._listener(StopLossMissing(symbol))
        if position.qty == 0:
            self._spawn_settle(symbol)
        elif known is not None and position.qty < known:
            # Shrunk without closing: a laddered liquidation or an auto-deleveraging.
            self._spawn_settle(symbol, flat=False)

    def _on_restored(self) -> None:
        if self._listener is not None:
            self._listener(StreamRestored())

    def _exchange_made(self, symbol: str) -> bool:
        """A close of ``symbol`` we neither sent nor are still opening."""
        return symbol in self._held and symbol not in self._closing and symbol not in self._placing

    def _spawn_settle(self, symbol: str, *, flat: bool = True) -> None:
        if symbol in self._settling:
            return
        self._settling.add(symbol)
        task = asyncio.create_task(self._settle(symbol, flat), name=f"bybit-settle-{symbol}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, symbol: str, flat: bool) -> None:
        """Report the exits of ``symbol`` the exchange made (``flat``: it holds none of the
        position now; else it shrank): from the pushes when they are complete, else (for a
        flat position) from REST."""
        since = self._held.get(symbol)
        try:
            if since is None:
                return
            exits = self._pushes.closes_since(symbol, since, self._booked, orderless=False)
            if not exits:
                await self._pushes.changed(STREAM_GRACE)
                exits = self._pushes.closes_since(symbol, since, self._booked, orderless=True)
            if not exits and flat:
                # Not from the stream's pushes: the stream was down, or they are late.
                exits = await self._rest_exits(symbol, since)
            if not exits:
                if flat:
                    log.warning("%s is flat on Bybit but its closing fill is not visible", symbol)
                return  # the poller or the next reconciliation tries again
            for number, (key, fill, reason) in enumerate(exits, start=1):
                self._report_exit(symbol, key, fill, reason, flat=flat and number == len(exits))
        except Exception as exc:
            log.warning("settling the close of %s failed: %s", symbol, exc)
        finally:
            self._settling.discard(symbol)

    def _report_exit(
        self, symbol: str, key: str, fill: Fill, reason: CloseReason, *, flat: bool
    ) -> None:
        since = self._held.get(symbol)
        if since is None or fill.at < since or key in self._booked:
            return  # reported already, or the close of an earlier position
        self._booked.add(key)
        if flat:
            del self._held[symbol]
        if self._listener is not None:
            self._listener(PositionExited(symbol, fill, reason, flat=flat))

    # --- REST polling while the stream is down -----------------------------------------------

    async def _poll_exits(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            if self.stream_healthy or self._http.gate.closed:
                continue  # during a ban, SL/TP hold on Bybit; their fills are read after it
            try:
                await self.reconcile_exits()
            except Exception as exc:
                log.warning("checking Bybit positions failed: %s", exc)

    async def reconcile_exits(self) -> None:
        """Positions we hold that Bybit no longer has were closed there (SL/TP, or by hand)."""
        watched = [s for s in self._held if self._exchange_made(s)]
        if not watched:
            return
        open_now = {p.symbol for p in await self.positions()}
        for symbol in watched:
            if symbol not in open_now and self._exchange_made(symbol):
                self._spawn_settle(symbol)


def _ms_of(row: Mapping[str, Any], name: str) -> datetime:
    """A row's time field, for paging back to a moment; a bad one reads as "now"."""
    try:
        return datetime.fromtimestamp(int(row[name]) / 1000, UTC)
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC)


def _wire(value: Decimal) -> str:
    """A number as Bybit takes it: plain digits, no exponent, no trailing zeros."""
    return f"{value.normalize():f}"
