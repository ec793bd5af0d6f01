"""Live trading on Bybit v5 (unified account, category linear) through pybit: the adapter.

The only module that trades with keys. Every pybit call runs in a worker thread
(``bybit_wire.call_pybit``); Bybit's shapes are parsed in ``bybit_messages`` and go no further.
Its parts, one concept each: ``bybit_orders`` (our orders and their fills), ``bybit_exits``
(exits Bybit makes by itself), ``bybit_symbols`` (a symbol readied before its order),
``bybit_private`` (the private stream), ``bybit_clock`` and ``venue_gate`` (Bybit's clock and
its bans).

Fills and closes come from the private stream (``execution``, ``order``, ``position``). While
it is down, REST covers both: fills are read back by ``orderLinkId`` and positions are polled
every ``poll_interval`` seconds. When the stream comes back, ``StreamRestored`` asks the engine
to reconcile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from trader.clock import Clock
from trader.errors import ConfigError, ExchangeError, NoPosition, OrderRejected
from trader.events import ClockSkewed
from trader.exchange.base import (
    Listener,
    MarketData,
    PriceUpdated,
    StreamHealth,
    StreamRestored,
    TakeProfitCancelled,
    VenuePosition,
)
from trader.exchange.bybit_clock import measure_offset
from trader.exchange.bybit_exits import ExchangeExits
from trader.exchange.bybit_fills import Pushes
from trader.exchange.bybit_messages import (
    CATEGORY,
    SETTLE_COIN,
    OrderUpdate,
    parse_execution,
    parse_order,
    parse_permissions,
    parse_position,
    parse_rows,
    parse_wallet,
    result_of,
)
from trader.exchange.bybit_orders import BybitOrders, wire
from trader.exchange.bybit_private import PrivateStream
from trader.exchange.bybit_stops import BybitStops
from trader.exchange.bybit_symbols import PreparedSymbols
from trader.exchange.bybit_wire import (
    POSITION_MODE_NOT_MODIFIED,
    call_pybit,
    make_http,
    read_pages,
)
from trader.exchange.reachability import until_answered
from trader.exchange.venue_gate import VenueGate
from trader.models import (
    CloseReason,
    EntryOrder,
    ExitOrder,
    Fill,
    Instrument,
    Position,
    TakeProfitLevel,
    Ticker,
    TrailingStop,
)

log = logging.getLogger(__name__)

# Bybit's answers that name the setting to fix: the process cannot go on with either.
KEY_REFUSALS = {
    10003: "BYBIT_API_KEY is not a key Bybit knows (check it, and BYBIT_NETWORK)",
    10004: "BYBIT_API_SECRET does not match BYBIT_API_KEY (Bybit could not verify the signature)",
}
REDUCE_ONLY_NOTHING_TO_CLOSE = 110017
POSITION_PAGE = 200  # Bybit's maximum: the fewest round trips


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
        pushes = Pushes()
        self._pushes = pushes
        self._listener: Listener | None = None
        self._clock_skew_ms: int | None = None  # Bybit's clock minus ours, once measured
        self._leave_gate: Callable[[], None] = lambda: None
        self._orders = BybitOrders(
            self._http,
            pushes,
            fill_timeout=fill_timeout,
            stream_healthy=lambda: self.stream_healthy,
        )
        self._stops = BybitStops(self._http)
        self._exits = ExchangeExits(
            pushes,
            self._orders,
            clock=clock,
            listener=lambda: self._listener,
            open_positions=self.positions,
            # During a ban SL/TP hold on Bybit; their fills are read after it.
            may_poll=lambda: not self.stream_healthy and not self._http.gate.closed,
            poll_interval=poll_interval,
        )
        self._symbols = PreparedSymbols(self._http, market)  # leverage, mode, stream

    # --- life cycle ----------------------------------------------------------------------

    async def start(self, listener: Listener) -> None:
        """Check the account before anything trades; ``ConfigError`` refuses a bad key."""
        self._listener = listener
        self._leave_gate = self._http.gate.subscribe(listener)  # bans, told as they happen
        # Bybit unreachable: asked again until it answers; a refused key stops start-up.
        await until_answered(self.check_account, listener, self._clock)
        await self._market.start(self._on_ticker)
        if self._stream is not None:
            await self._stream.start()
        self._exits.start()

    async def stop(self) -> None:
        self._leave_gate()
        if self._stream is not None:  # first: no push may start new work after this
            await self._stream.stop()
        await self._exits.stop()
        await self._market.stop()
        await asyncio.to_thread(self._http.client.close)

    @property
    def stream_healthy(self) -> bool:
        return self._stream is not None and self._stream.healthy

    async def drop_stream(self) -> None:
        """Close the private stream; it reconnects, and the engine reconciles."""
        if self._stream is not None:
            await self._stream.drop()

    def streams(self) -> dict[str, StreamHealth]:
        streams = {"public": self._market.stream_health()}
        if self._stream is not None:
            streams["private"] = self._stream.health()
        return streams

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
        try:
            key = await call_pybit("API key information", self._http.get_api_key_information)
        except ExchangeError as exc:
            wrong = KEY_REFUSALS.get(exc.code) if exc.code is not None else None
            if wrong is None:
                raise
            raise ConfigError(f"{wrong} (Bybit's retCode {exc.code})") from None
        refusal = parse_permissions(result_of(key)).refusal()
        if refusal is not None:
            raise ConfigError(f"{refusal}: refusing to trade; use a key with trade rights only")
        try:
            await call_pybit(
                "position mode",
                self._http.switch_position_mode,
                unchanged=POSITION_MODE_NOT_MODIFIED,
                category=CATEGORY,
                coin=SETTLE_COIN,
                mode=0,
            )
        except ExchangeError as exc:
            raise ConfigError(f"Bybit could not switch to one-way mode: {exc}") from None
        log.info("Bybit account checked; wallet %s USDT", await self.balance())

    async def adopt(self, positions: Sequence[Position]) -> None:
        for position in positions:
            self._exits.hold(position.symbol, position.opened_at, position.qty)
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
        await self._stops.set_stop_loss(symbol, price)

    async def set_trailing_stop(self, symbol: str, trailing: TrailingStop) -> None:
        await self._stops.set_trailing_stop(symbol, trailing)

    async def set_take_profit(self, symbol: str, price: Decimal, qty: Decimal) -> None:
        await self._stops.add_take_profit(symbol, price, qty)

    async def open(self, order: EntryOrder) -> Fill:
        # Nothing before the order: prepare_entry() has readied the symbol (bybit_symbols).
        params = {
            "category": CATEGORY,
            "symbol": order.symbol,
            "side": order.side.value,
            "orderType": "Market",
            "qty": wire(order.qty),
            "positionIdx": 0,
            "orderLinkId": order.link_id,
            "stopLoss": wire(order.stop_loss),
            "tpslMode": "Full",
            "slTriggerBy": "LastPrice",
        }
        if order.take_profit is not None:  # else several take-profits follow the fill
            params |= {"takeProfit": wire(order.take_profit), "tpTriggerBy": "LastPrice"}
        with self._exits.placing(order.symbol):
            await self._orders.place(params, order.link_id)
            await self._symbols.watch_after_entry(order.symbol)  # after the order, not before
            fill = await self._orders.fill_of_sent(order.link_id, order.symbol)
        self._exits.hold(order.symbol, fill.at, fill.qty)
        return fill

    async def close(self, order: ExitOrder) -> Fill:
        """A reduce-only market order; it may fill in part (then the rest stays open)."""
        params = {
            "category": CATEGORY,
            "symbol": order.symbol,
            "side": order.side.value,
            "orderType": "Market",
            "qty": wire(order.qty),
            "positionIdx": 0,
            "reduceOnly": True,
            "orderLinkId": order.link_id,
        }
        with self._exits.closing(order.symbol):
            try:
                await self._orders.place(params, order.link_id)
            except OrderRejected as exc:
                if exc.code == REDUCE_ONLY_NOTHING_TO_CLOSE:
                    # Its SL/TP (or a hand) got there first: settle that close instead.
                    self._exits.settle(order.symbol)
                    raise NoPosition(str(exc), code=exc.code) from None
                raise
            try:
                fill = await self._orders.fill_of_sent(order.link_id, order.symbol)
            except ExchangeError:
                if self._exits.flat_since_held(order.symbol):
                    self._exits.settle(order.symbol)  # flat after all: settle from Bybit
                raise
            self._exits.closed_by_us(
                order.symbol, self._orders.order_id(order.link_id), fill, order.qty
            )
            return fill

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
        return await self._orders.find(link_id)

    async def take_profit_orders(self, symbol: str) -> list[TakeProfitLevel]:
        return await self._stops.take_profits(symbol)

    async def exits_since(self, symbol: str, since: datetime) -> list[tuple[Fill, CloseReason]]:
        return await self._exits.exits(symbol, since)

    # --- what the stream pushes --------------------------------------------------------------

    def _on_push(self, topic: str, rows: list[Mapping[str, Any]]) -> None:
        """A private push, on the loop."""
        if topic == "execution":
            for execution in parse_rows(rows, parse_execution):
                self._pushes.add_execution(execution)
        elif topic == "order":
            for update in parse_rows(rows, parse_order):
                self._pushes.add_order(update)
                if _cancelled_by_hand(update) and self._listener is not None:
                    self._listener(TakeProfitCancelled(update.symbol, update.trigger_price))
        elif topic == "position":
            for position in parse_rows(rows, parse_position):
                self._exits.on_position(position)

    def _on_restored(self) -> None:
        if self._listener is not None:
            self._listener(StreamRestored())


def _cancelled_by_hand(update: OrderUpdate) -> bool:
    """A partial take-profit of ours that ended unfilled while its position stays: cancelled
    by hand (CancelByUser), or by Bybit before a liquidation or auto-deleveraging. Those it
    ends with the position (CancelByTpSlTsClear) need no look; the check that follows is by
    the order's price and against two reads of the orders, so any other is harmless."""
    return (
        update.stop_order_type == "PartialTakeProfit"
        and update.status == "Deactivated"
        and update.cancel_type != "CancelByTpSlTsClear"
    )
