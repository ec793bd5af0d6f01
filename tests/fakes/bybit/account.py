"""The fake's unified trading account: what clients ask of it by private REST (market orders
with TP/SL, leverage, position mode), validated and refused as Bybit does; the trading stop and
the exchange-side exits the last price triggers are ``stops``'.

A market order is an IOC order within a price band on Bybit: ``partial_fill_next`` makes the
next one fill only in part and end ``Cancelled`` (how a linear order cut by its band ends, with
``cumExecQty`` > 0) or ``PartiallyFilledCanceled`` (documented for spot only).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.fakes.bybit import params as p
from tests.fakes.bybit.common import BybitError, params_error
from tests.fakes.bybit.market import FakeInstrument, FakeTicker
from tests.fakes.bybit.records import FakePosition
from tests.fakes.bybit.stops import TradingStops
from tests.fakes.bybit.trades import FakeOrder

PARTIAL_END_STATUSES = ("Cancelled", "PartiallyFilledCanceled")


@dataclass(frozen=True)
class PartialFill:
    """How the next market order (of ``symbol``, or any) ends: ``filled`` of it, then
    ``status``."""

    filled: Decimal
    symbol: str | None
    status: str


class FakeAccount(TradingStops):
    """One unified account trading linear contracts in one-way mode with market orders."""

    def __init__(
        self,
        instruments: Mapping[str, FakeInstrument],
        tickers: Mapping[str, FakeTicker],
        clock: Callable[[], int],
    ) -> None:
        super().__init__(instruments, tickers, clock)
        self._init_modes()
        self.partial_fills: list[PartialFill] = []

    def partial_fill_next(self, filled: Decimal, symbol: str | None, status: str) -> None:
        if status not in PARTIAL_END_STATUSES:
            raise ValueError(f"fake: a partly filled market order ends {PARTIAL_END_STATUSES}")
        self.partial_fills.append(PartialFill(filled, symbol, status))

    def place_order(self, params: Mapping[str, Any]) -> dict[str, str]:
        """``/v5/order/create``: a market order, filled at once (or the error Bybit gives)."""
        p.require_linear(params)
        instrument = self.instrument(params.get("symbol"))
        symbol = instrument.symbol
        side = params.get("side")
        if side not in ("Buy", "Sell"):
            raise params_error("params error: side invalid")
        order_type = params.get("orderType")
        if order_type != "Market":
            raise params_error(f"fake: orderType {order_type!r} is not simulated, only Market")
        qty = p.order_qty(params, instrument)
        p.position_idx(params, self.hedge_of(symbol))
        link = p.order_link_id(params)
        reduce_only = p.flag(params, "reduceOnly")
        take_profit = p.optional_price(params, "takeProfit") or None
        stop_loss = p.optional_price(params, "stopLoss") or None
        tp_by = p.trigger_by(params, "tpTriggerBy")
        sl_by = p.trigger_by(params, "slTriggerBy")
        mode = p.tpsl_mode(params) if take_profit or stop_loss else ""
        if link and any(order.order_link_id == link for order in self.orders):
            raise BybitError(110072, "OrderLinkedID is duplicate")
        position = self.positions.get(symbol)
        if reduce_only:
            if position is None:
                raise BybitError(
                    110017, "current position is zero, cannot fix reduce-only order qty"
                )
            if position.side == side:
                raise BybitError(110017, "Reduce-only rule not satisfied")
            qty = min(qty, position.size)  # Bybit trims a reduce-only order to the position
            take_profit = stop_loss = None
        elif take_profit or stop_loss:
            p.check_tpsl_side(side, self._tickers[symbol].last, take_profit, stop_loss)
            if mode == "Partial":
                self.check_partial_room(symbol, take_profit is not None, stop_loss is not None)
        price = self._book_price(symbol, side)
        opposite = position.size if position is not None and position.side != side else Decimal(0)
        opening = max(Decimal(0), qty - opposite)
        if opening > 0:
            cost = opening * price / self.leverage_of(symbol) + opening * price * self.fee_rate
            if cost > self.available_balance():
                raise BybitError(110007, "ab not enough for new order")
        now = self._clock()
        order = FakeOrder(
            order_id=str(uuid.uuid4()),
            order_link_id=link,
            symbol=symbol,
            side=side,
            qty=qty,
            steps=self._steps(symbol),
            created_ms=now,
            updated_ms=now,
            last_price_on_created=self._tickers[symbol].last,
            reduce_only=reduce_only,
            take_profit=take_profit,
            stop_loss=stop_loss,
            tp_trigger_by=tp_by if take_profit else "",
            sl_trigger_by=sl_by if stop_loss else "",
            tpsl_mode=mode if take_profit or stop_loss else "",
            fee_coin=instrument.settle_coin,
        )
        self.orders.append(order)
        self._push_order(order)
        partial = self._take_partial(symbol)
        filled = qty if partial is None else min(partial.filled, qty)
        self._fill(order, filled, "Filled" if partial is None else partial.status)
        if order.tpsl_mode == "Partial":
            self.attach_partials(order, filled)
        return {"orderId": order.order_id, "orderLinkId": order.order_link_id}

    def _take_partial(self, symbol: str) -> PartialFill | None:
        for plan in self.partial_fills:
            if plan.symbol in (None, symbol):
                self.partial_fills.remove(plan)
                return plan
        return None

    def set_leverage(self, params: Mapping[str, Any]) -> None:
        p.require_linear(params)
        instrument = self.instrument(params.get("symbol"))
        symbol = instrument.symbol
        buy, sell = p.decimal(params, "buyLeverage"), p.decimal(params, "sellLeverage")
        if buy != sell and not self.hedge_of(symbol):
            raise params_error("buy leverage must be equal to sell leverage in one-way mode")
        if buy < 1:
            raise params_error(f"leverage {buy} is out of range [1, {instrument.max_leverage}]")
        if buy > Decimal(instrument.max_leverage):
            # Bybit's answer (retCode 110013, "Cannot set leverage due to risk limit level."),
            # leverages written x100: "cannot set leverage [5000] gt maxLeverage [2500] ...".
            raise BybitError(
                110013,
                f"cannot set leverage [{int(buy * 100)}] gt maxLeverage "
                f"[{int(Decimal(instrument.max_leverage) * 100)}] by risk limit",
            )
        if buy == self.leverage_of(symbol):
            raise BybitError(110043, "leverage not modified")
        self.leverage[symbol] = buy
        position = self.positions.get(symbol)
        if position is not None:
            position.leverage = buy
            self._touch(position)
            self._push_position(symbol)

    def seed_position(
        self,
        symbol: str,
        side: str,
        qty: Decimal,
        price: Decimal,
        *,
        leverage: Decimal | None = None,
        take_profit: Decimal | None = None,
        stop_loss: Decimal | None = None,
        created_ms: int | None = None,
        opened_ms: int | None = None,
    ) -> FakePosition:
        """A position that was already open (no order, no fee), with its TP/SL orders."""
        if leverage is not None:
            self.leverage[symbol] = leverage
        position = self.new_position(
            symbol, side, qty, price, created_ms=created_ms, opened_ms=opened_ms
        )
        position.take_profit, position.stop_loss = take_profit, stop_loss
        self._sync_conditionals(symbol)
        return position
