"""Live trading on Bybit v5 (unified account, category linear) through pybit's ``HTTP``.

The only module that trades with keys. Every pybit call runs in a worker thread; Bybit's
shapes are parsed here, one function per message, and go no further. Exits the exchange makes
by itself (SL/TP) are found by polling positions; the private stream comes next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pybit.unified_trading import HTTP

from trader.clock import Clock
from trader.errors import (
    ConfigError,
    ExchangeError,
    NoPosition,
    OrderRejected,
    OutcomeUnknown,
)
from trader.exchange.base import Listener, MarketData, PositionExited, PriceUpdated
from trader.exchange.bybit_wire import call_pybit, decimal_field
from trader.models import (
    CloseReason,
    EntryOrder,
    ExitOrder,
    Fill,
    Instrument,
    Position,
    Side,
    Ticker,
)

log = logging.getLogger(__name__)

CATEGORY = "linear"
SETTLE_COIN = "USDT"
LEVERAGE_NOT_MODIFIED = 110043
POSITION_MODE_NOT_MODIFIED = 110025
REDUCE_ONLY_NOTHING_TO_CLOSE = 110017
TRANSFER_PERMISSIONS = frozenset({"AccountTransfer", "SubMemberTransfer", "Withdraw"})
STOP_REASONS = {"StopLoss": CloseReason.STOP_LOSS, "TakeProfit": CloseReason.TAKE_PROFIT}


# --- Bybit's shapes → ours ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyPermissions:
    read_only: bool
    can_withdraw: bool
    can_transfer: bool
    can_trade_contracts: bool

    def refusal(self) -> str | None:
        """Why a key must not be used for trading, or None."""
        if self.can_withdraw:
            return "BYBIT_API_KEY can withdraw funds"
        if self.can_transfer:
            return "BYBIT_API_KEY can transfer funds"
        if self.read_only:
            return "BYBIT_API_KEY is read-only"
        if not self.can_trade_contracts:
            return "BYBIT_API_KEY cannot trade contracts (needs Contract: Orders and Positions)"
        return None


def parse_permissions(result: Mapping[str, Any]) -> KeyPermissions:
    """``/v5/user/query-api``'s result."""
    permissions = result.get("permissions") or {}
    wallet = set(permissions.get("Wallet") or [])
    contract = set(permissions.get("ContractTrade") or [])
    return KeyPermissions(
        read_only=str(result.get("readOnly")) == "1",
        can_withdraw="Withdraw" in wallet or bool(permissions.get("Withdraw")),
        can_transfer=bool(wallet & (TRANSFER_PERMISSIONS - {"Withdraw"})),
        can_trade_contracts={"Order", "Position"} <= contract,
    )


def parse_wallet(result: Mapping[str, Any]) -> Decimal:
    """USDT ``walletBalance`` from ``/v5/account/wallet-balance``'s result."""
    for account in result.get("list") or []:
        for coin in account.get("coin") or []:
            if coin.get("coin") == SETTLE_COIN:
                return decimal_field(coin.get("walletBalance"), "walletBalance")
    return Decimal(0)


def parse_open_symbols(result: Mapping[str, Any]) -> dict[str, Decimal]:
    """Symbol → size of every open position in ``/v5/position/list``'s result."""
    sizes: dict[str, Decimal] = {}
    for row in result.get("list") or []:
        size = decimal_field(row.get("size") or "0", "size")
        if size > 0:
            sizes[str(row["symbol"])] = size
    return sizes


def parse_fill(rows: Sequence[Mapping[str, Any]], link_id: str) -> Fill | None:
    """One fill from an order's executions (``/v5/execution/list``): quantity summed, price
    weighted by quantity, Bybit's own ``execFee`` summed. None when there are none."""
    trades = [r for r in rows if r.get("execType", "Trade") == "Trade"]
    if not trades:
        return None
    parts = [
        (
            decimal_field(r["execQty"], "execQty"),
            decimal_field(r["execPrice"], "execPrice"),
            decimal_field(r["execFee"], "execFee"),
        )
        for r in trades
    ]
    qty = sum((q for q, _, _ in parts), Decimal(0))
    value = sum((q * price for q, price, _ in parts), Decimal(0))
    fee = sum((f for _, _, f in parts), Decimal(0))
    last = max(trades, key=lambda r: int(r.get("execTime") or 0))
    return Fill(
        link_id=link_id,
        symbol=str(last["symbol"]),
        side=Side(str(last["side"])),
        qty=qty,
        price=value / qty,
        fee=fee,
        at=datetime.fromtimestamp(int(last["execTime"]) / 1000, UTC),
        exec_id=str(last.get("execId") or ""),
    )


def _result(response: Any) -> Mapping[str, Any]:
    result = response.get("result") if isinstance(response, Mapping) else None
    if not isinstance(result, Mapping):
        raise ExchangeError("Bybit sent a response without a result")
    return result


# --- the adapter -------------------------------------------------------------------------------


class BybitExchange:
    """Live trading: market orders with SL/TP attached on Bybit, one-way positions."""

    mode = "live"

    def __init__(
        self,
        market: MarketData,
        *,
        rest_url: str,
        api_key: str,
        api_secret: str,
        clock: Clock,
        recv_window: int = 5000,
        timeout: int = 10,
        poll_interval: float = 1.0,
        fill_timeout: float = 5.0,
    ) -> None:
        self._market = market
        self._clock = clock
        self._recv_window = recv_window
        self._poll_interval = poll_interval
        self._fill_timeout = fill_timeout
        # force_retry stays off: pybit would re-send an order whose answer timed out.
        self._http = HTTP(
            testnet=False,
            api_key=api_key,
            api_secret=api_secret,
            recv_window=recv_window,
            timeout=timeout,
            force_retry=False,
        )
        self._http.endpoint = rest_url.rstrip("/")  # pybit's HTTP has no URL parameter
        self._listener: Listener | None = None
        self._held: dict[str, Position | EntryOrder] = {}  # symbol → what we hold there
        self._closing: set[str] = set()
        self._poller: asyncio.Task[None] | None = None
        self._leverage: dict[str, int] = {}

    # --- life cycle ----------------------------------------------------------------------

    async def start(self, listener: Listener) -> None:
        """Check the account before anything trades; ``ConfigError`` refuses a bad key."""
        self._listener = listener
        await self.check_account()
        await self._market.start(self._on_ticker)
        self._poller = asyncio.create_task(self._poll_exits(), name="bybit-exit-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self._market.stop()

    async def check_account(self) -> None:
        server = await call_pybit("server time", self._http.get_server_time)
        server_ms = int(_result(server).get("timeNano") or 0) // 1_000_000 or int(
            server.get("time") or 0
        )
        skew_ms = abs(server_ms - int(self._clock.now().timestamp() * 1000))
        if server_ms and skew_ms > self._recv_window:
            log.warning(
                "clock skew with Bybit is %d ms, beyond the %d ms recv window: requests will "
                "be refused until the clock is synchronised (NTP)",
                skew_ms,
                self._recv_window,
            )
        key = await call_pybit("API key information", self._http.get_api_key_information)
        refusal = parse_permissions(_result(key)).refusal()
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
            self._held[position.symbol] = position
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
        if self._leverage.get(symbol) == leverage:
            return
        try:
            await call_pybit(
                "set leverage",
                self._http.set_leverage,
                category=CATEGORY,
                symbol=symbol,
                buyLeverage=str(leverage),
                sellLeverage=str(leverage),
            )
        except ExchangeError as exc:
            if exc.code != LEVERAGE_NOT_MODIFIED:  # "leverage not modified" is success
                raise
        self._leverage[symbol] = leverage

    async def open(self, order: EntryOrder) -> Fill:
        await self._market.watch(order.symbol)
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
        await self._place(params, order.link_id)
        self._held[order.symbol] = order
        return await self._await_fill(order.link_id, order.symbol)

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
                    raise NoPosition(str(exc), code=exc.code) from None
                raise
            fill = await self._await_fill(order.link_id, order.symbol)
            self._held.pop(order.symbol, None)
            return fill
        finally:
            self._closing.discard(order.symbol)

    async def _place(self, params: dict[str, Any], link_id: str) -> None:
        """Send an order once. After a timeout it is looked up by ``orderLinkId``: found
        means accepted, and it is never sent again."""
        try:
            await call_pybit("order", self._http.place_order, order=True, **params)
        except OutcomeUnknown:
            log.warning("no answer to order %s; looking it up by orderLinkId", link_id)
            if not await self._order_known(link_id):
                raise
            log.info("order %s was accepted after all", link_id)

    async def _order_known(self, link_id: str) -> bool:
        response = await call_pybit(
            "order lookup", self._http.get_open_orders, category=CATEGORY, orderLinkId=link_id
        )
        return bool(_result(response).get("list"))

    async def _await_fill(self, link_id: str, symbol: str) -> Fill:
        """The order's executions, read back until they are there (a market order fills at
        once; the read can still come a moment early)."""
        deadline = asyncio.get_running_loop().time() + self._fill_timeout
        while True:
            response = await call_pybit(
                "executions", self._http.get_executions, category=CATEGORY, orderLinkId=link_id
            )
            fill = parse_fill(_result(response).get("list") or [], link_id)
            if fill is not None:
                return fill
            if asyncio.get_running_loop().time() >= deadline:
                raise OutcomeUnknown(f"order {link_id} for {symbol} shows no fill yet")
            await asyncio.sleep(0.1)

    async def balance(self) -> Decimal:
        response = await call_pybit(
            "wallet balance",
            self._http.get_wallet_balance,
            accountType="UNIFIED",
            coin=SETTLE_COIN,
        )
        return parse_wallet(_result(response))

    # --- exits the exchange makes ------------------------------------------------------------

    async def _poll_exits(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.reconcile_exits()
            except Exception as exc:
                log.warning("checking Bybit positions failed: %s", exc)

    async def reconcile_exits(self) -> None:
        """Positions we hold that Bybit no longer has were closed there (SL/TP, or by hand):
        each is reported with the exchange's closing executions."""
        watched = [s for s in self._held if s not in self._closing]
        if not watched:
            return
        response = await call_pybit(
            "positions", self._http.get_positions, category=CATEGORY, settleCoin=SETTLE_COIN
        )
        open_now = parse_open_symbols(_result(response))
        for symbol in watched:
            if symbol in open_now or symbol in self._closing:
                continue
            exit_fill, reason = await self._closing_fill(symbol)
            if exit_fill is None:
                continue  # executions not visible yet: next round
            self._held.pop(symbol, None)
            if self._listener is not None:
                self._listener(PositionExited(symbol, exit_fill, reason))

    async def _closing_fill(self, symbol: str) -> tuple[Fill | None, CloseReason]:
        response = await call_pybit(
            "executions", self._http.get_executions, category=CATEGORY, symbol=symbol, limit=50
        )
        rows = [r for r in _result(response).get("list") or [] if _closes(r)]
        if not rows:
            return None, CloseReason.EXTERNAL
        order_id = rows[0].get("orderId")  # the newest closing order
        closing = [r for r in rows if r.get("orderId") == order_id]
        reason = STOP_REASONS.get(str(closing[0].get("stopOrderType") or ""), CloseReason.EXTERNAL)
        return parse_fill(closing, str(closing[0].get("orderLinkId") or "")), reason


def _wire(value: Decimal) -> str:
    """A number as Bybit takes it: plain digits, no exponent, no trailing zeros."""
    return f"{value.normalize():f}"


def _closes(row: Mapping[str, Any]) -> bool:
    """An execution that reduced a position."""
    try:
        return Decimal(str(row.get("closedSize") or "0")) > 0
    except InvalidOperation:
        return False
