"""The exits Bybit holds for a position: set by ``/v5/position/trading-stop`` (or with an
order), kept as conditional orders, and triggered on the last price.

- **Full TP/SL** (``tpslMode=Full``): one TakeProfit and one StopLoss order for the whole
  position (kept by ``Ledger._sync_conditionals``); trading-stop moves them, "0" cancels.
- **Partial TP/SL** (``tpslMode=Partial``): each trading-stop call *adds* a PartialTakeProfit
  order of ``tpSize`` and/or a PartialStopLoss order of ``slSize`` ("Partial position TP/SL
  orders: This API can only add partial position TP/SL orders"). A TP and an SL added together
  are a pair: when one triggers, the other is cancelled. At most 20 of each kind (110060); their
  sizes together at most the position (110058). When the position shrinks below what they
  cover, the earliest are reduced first (one reduced to nothing is cancelled,
  CancelByReduceOnly); when it closes, all are cancelled (CancelByTpSlTsClear). A market order
  with ``tpslMode=Partial`` gets a pair for the qty it filled. Full and Partial orders coexist.
- **Trailing stop** (Full only): ``trailingStop`` is a price distance, ``activePrice`` the last
  price that activates it (none: active at once). Once active it follows the best last price
  and closes the whole position when the price falls back by the distance: a TrailingStop order
  (createType CreateByTrailingStop) whose triggerPrice is the activation price, as Bybit's order
  docs define triggerPrice for a TrailingStop; the position shows ``trailingStop``.

Sources: bybit-exchange/docs v5 position/trading-stop, order/create-order, order/open-order,
enum (stopOrderType, createType, cancelType), error (110058, 110060); Bybit's help centre
articles 900002669906 (partial TP/SL) and 360039260514 (trailing stop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.fakes.bybit import params as p
from tests.fakes.bybit.common import BybitError, params_error
from tests.fakes.bybit.exits import Exits
from tests.fakes.bybit.market import FakeInstrument
from tests.fakes.bybit.records import FakePosition
from tests.fakes.bybit.trades import FakeOrder

PARTIAL_TP, PARTIAL_SL, TRAILING = "PartialTakeProfit", "PartialStopLoss", "TrailingStop"
PARTIAL_KINDS = (PARTIAL_TP, PARTIAL_SL)
STOP_KINDS = ("TakeProfit", "StopLoss", PARTIAL_TP, PARTIAL_SL, TRAILING)
WHOLE_POSITION_KINDS = ("TakeProfit", "StopLoss", TRAILING)
LOSS_KINDS = ("StopLoss", PARTIAL_SL, TRAILING)
MAX_PARTIAL = 20  # per kind: "Cannot have more than 20 TP/SLs under Partial tpSlMode"
# Bybit's recorded answers (ccxt#27143; pybit#346, which says Full for any mode).
PAIRS_REQUIRED = (
    '"tpSize" and "takeProfit" or "slSize" and "stopLoss" need to input in pairs and must set '
    "at least one pair when tpslMode is Partial."
)
SIZES_DIFFER = "slSize and tpSize must be equal if both values are set when tpslMode is Full"
TOO_MANY = "Cannot have more than 20 TP/SLs under Partial tpSlMode"
NO_ROOM = "Insufficient number of remaining position size to set take profit and stop loss"


@dataclass(frozen=True)
class PartialStop:
    """One partial TP or SL asked for: its kind, trigger price, size and trigger price type."""

    kind: str
    price: Decimal
    size: Decimal
    trigger_by: str


class TradingStops(Exits):
    """The position's TP/SL, partial TP/SL and trailing stop, and their triggers."""

    # -- trading-stop ----------------------------------------------------------------------

    def set_trading_stop(self, params: Mapping[str, Any]) -> None:
        """``/v5/position/trading-stop``. ``tpslMode`` and ``positionIdx`` are required."""
        p.require_linear(params)
        instrument = self.instrument(params.get("symbol"))
        for name in ("tpslMode", "positionIdx"):
            if params.get(name) is None or params.get(name) == "":
                raise params_error(f"Missing some parameters that must be filled in, {name}")
        p.position_idx(params, self.hedge_of(instrument.symbol))
        mode = p.tpsl_mode(params)
        position = self.positions.get(instrument.symbol)
        if position is None:
            raise params_error("can not set tp/sl/ts for zero position")
        both_sizes = all(params.get(n) not in (None, "") for n in ("tpSize", "slSize"))
        if both_sizes and p.decimal(params, "tpSize") != p.decimal(params, "slSize"):
            raise params_error(SIZES_DIFFER)
        if mode == "Partial":
            self._add_partials(position, params, instrument)
        else:
            self._set_full(position, params)

    def _set_full(self, position: FakePosition, params: Mapping[str, Any]) -> None:
        take_profit = p.optional_price(params, "takeProfit")
        stop_loss = p.optional_price(params, "stopLoss")
        trailing = p.optional_price(params, "trailingStop")
        active = p.optional_price(params, "activePrice") or None
        new_tp = position.take_profit if take_profit is None else (take_profit or None)
        new_sl = position.stop_loss if stop_loss is None else (stop_loss or None)
        tp_by = p.trigger_by(params, "tpTriggerBy") if "tpTriggerBy" in params else None
        sl_by = p.trigger_by(params, "slTriggerBy") if "slTriggerBy" in params else None
        trailing_changed = trailing is not None and (
            (trailing or None) != position.trailing_stop
            or (active is not None and active != position.active_price)
        )
        unchanged = (new_tp, new_sl) == (position.take_profit, position.stop_loss) and (
            tp_by in (None, position.tp_trigger_by)
            and sl_by in (None, position.sl_trigger_by)
            and not trailing_changed
        )
        if unchanged:
            raise BybitError(34040, "not modified")
        last = self._tickers[position.symbol].last
        p.check_tpsl_side(
            position.side,
            last,
            new_tp if take_profit else None,
            new_sl if stop_loss else None,
        )
        position.take_profit, position.stop_loss = new_tp, new_sl
        position.tp_trigger_by = tp_by or position.tp_trigger_by
        position.sl_trigger_by = sl_by or position.sl_trigger_by
        if trailing_changed:
            position.trailing_stop = trailing or None
            position.active_price = (active or last) if trailing else None
            position.trailing_best = None
            self._follow(position, last)
        self._touch(position)
        self._sync_conditionals(position.symbol)
        self._push_position(position.symbol)

    def _add_partials(
        self, position: FakePosition, params: Mapping[str, Any], instrument: FakeInstrument
    ) -> None:
        if params.get("trailingStop") not in (None, "", "0", 0):
            raise BybitError(10001, "fake: a trailing stop is simulated with tpslMode Full only")
        wanted: list[PartialStop] = []
        for kind, price_name, size_name, by_name in (
            (PARTIAL_TP, "takeProfit", "tpSize", "tpTriggerBy"),
            (PARTIAL_SL, "stopLoss", "slSize", "slTriggerBy"),
        ):
            price = p.optional_price(params, price_name)
            has_size = params.get(size_name) not in (None, "")
            if bool(price) != has_size:
                raise params_error(PAIRS_REQUIRED)
            if price:
                size = p.tpsl_size(params, size_name, instrument)
                wanted.append(PartialStop(kind, price, size, p.trigger_by(params, by_name)))
        if not wanted:
            raise params_error(PAIRS_REQUIRED)
        prices = {stop.kind: stop.price for stop in wanted}
        last = self._tickers[position.symbol].last
        p.check_tpsl_side(position.side, last, prices.get(PARTIAL_TP), prices.get(PARTIAL_SL))
        for stop in wanted:
            self._check_room(position, stop.kind, stop.size)
        self._place_partials(position, wanted)

    def _check_room(self, position: FakePosition, kind: str, size: Decimal) -> None:
        held = self.partial_orders(position.symbol, kind)
        if len(held) >= MAX_PARTIAL:
            raise BybitError(110060, TOO_MANY)
        if sum((order.qty for order in held), Decimal(0)) + size > position.size:
            raise BybitError(110058, NO_ROOM)

    def _place_partials(self, position: FakePosition, wanted: list[PartialStop]) -> None:
        orders = []
        for stop in wanted:
            rising = (stop.kind == PARTIAL_TP) == (position.side == "Buy")
            order = self._closing_order(
                position,
                stop.size,
                status="Untriggered",
                close_on_trigger=True,
                stop_order_type=stop.kind,
                create_type=f"CreateBy{stop.kind}",
                trigger_price=stop.price,
                trigger_by=stop.trigger_by,
                trigger_direction=1 if rising else 2,
                tpsl_mode="Partial",
            )
            self.orders.append(order)
            orders.append(order)
        if len(orders) == 2:
            orders[0].pair_id, orders[1].pair_id = orders[1].order_id, orders[0].order_id
        for order in orders:
            self._push_order(order)

    # -- partial TP/SL set with a market order ---------------------------------------------

    def check_partial_room(self, symbol: str, take_profit: bool, stop_loss: bool) -> None:
        """Refuse (110060) an order whose partial TP/SL would be one too many."""
        for kind, wanted in ((PARTIAL_TP, take_profit), (PARTIAL_SL, stop_loss)):
            if wanted and len(self.partial_orders(symbol, kind)) >= MAX_PARTIAL:
                raise BybitError(110060, TOO_MANY)

    def attach_partials(self, order: FakeOrder, filled: Decimal) -> None:
        """A filled ``tpslMode=Partial`` order's TP/SL: a pair for the qty it filled ("as there
        is no size option, so it will create tp/sl orders with the qty you actually fill")."""
        position = self.positions.get(order.symbol)
        if position is None or position.side != order.side or filled <= 0:
            return
        wanted = [
            PartialStop(kind, price, filled, by)
            for kind, price, by in (
                (PARTIAL_TP, order.take_profit, order.tp_trigger_by),
                (PARTIAL_SL, order.stop_loss, order.sl_trigger_by),
            )
            if price is not None
        ]
        self._place_partials(position, wanted)

    # -- triggers --------------------------------------------------------------------------

    def on_ticker(self, symbol: str) -> None:
        """Trigger, one at a time, each TP/SL and trailing stop the last price has crossed:
        the losing side first, then the nearest first."""
        while (order := self._next_crossed(symbol)) is not None:
            self._trigger(order)

    def _next_crossed(self, symbol: str) -> FakeOrder | None:
        position = self.positions.get(symbol)
        if position is None:
            return None
        last = self._tickers[symbol].last
        self._follow(position, last)
        sign = 1 if position.side == "Buy" else -1
        crossed: list[tuple[tuple[bool, Decimal], FakeOrder]] = []
        for order in self.stop_orders(symbol):
            trigger = self._trigger_price(position, order)
            if trigger is None:
                continue
            if last >= trigger if order.trigger_direction == 1 else last <= trigger:
                loss = order.stop_order_type in LOSS_KINDS
                crossed.append(((not loss, -sign * trigger if loss else sign * trigger), order))
        return min(crossed, key=lambda item: item[0])[1] if crossed else None

    @staticmethod
    def _trigger_price(position: FakePosition, order: FakeOrder) -> Decimal | None:
        if order.stop_order_type != TRAILING:
            return order.trigger_price
        best, distance = position.trailing_best, position.trailing_stop
        if best is None or distance is None:
            return None  # not active yet
        return best - distance if position.side == "Buy" else best + distance

    @staticmethod
    def _follow(position: FakePosition, last: Decimal) -> None:
        """Activate the trailing stop once the last price reaches its activation price; then
        keep the best last price since."""
        if position.trailing_stop is None or position.active_price is None:
            return
        long = position.side == "Buy"
        best = position.trailing_best
        if best is None:
            if last >= position.active_price if long else last <= position.active_price:
                position.trailing_best = last
        else:
            position.trailing_best = max(best, last) if long else min(best, last)

    def _trigger(self, order: FakeOrder) -> None:
        position = self.positions[order.symbol]
        order.status, order.updated_ms = "Triggered", self._clock()
        whole = order.stop_order_type in WHOLE_POSITION_KINDS
        order.qty = position.size if whole else min(order.qty, position.size)
        self._push_order(order)
        if order.pair_id:
            taken = order.stop_order_type == PARTIAL_TP
            for other in self.partial_orders(order.symbol):
                if other.order_id == order.pair_id:
                    self._deactivate(
                        other,
                        "CancelByOCOSlCanceledByTpTriggered"
                        if taken
                        else "CancelByOCOTpCanceledBySlTriggered",
                    )
        self._fill(order)

    # -- keeping the orders in step with the position --------------------------------------

    def _sync_conditionals(self, symbol: str) -> None:
        super()._sync_conditionals(symbol)
        self._sync_trailing(symbol)
        self._sync_partials(symbol)

    def _sync_trailing(self, symbol: str) -> None:
        """One Untriggered TrailingStop order for the whole position while it has one."""
        position = self.positions.get(symbol)
        order = self._conditional(symbol, TRAILING)
        if position is None or position.trailing_stop is None:
            if order is not None:
                self._deactivate(order, "CancelByTpSlTsClear" if position is None else "UNKNOWN")
            return
        trigger = position.active_price
        if order is None:
            order = self._closing_order(
                position,
                position.size,
                status="Untriggered",
                close_on_trigger=True,
                stop_order_type=TRAILING,
                create_type="CreateByTrailingStop",
                trigger_price=trigger,
                trigger_by="LastPrice",
                trigger_direction=2 if position.side == "Buy" else 1,
            )
            self.orders.append(order)
        elif (order.trigger_price, order.qty) == (trigger, position.size):
            return
        order.trigger_price, order.qty, order.updated_ms = trigger, position.size, self._clock()
        self._push_order(order)

    def _sync_partials(self, symbol: str) -> None:
        """Cancel the partial TP/SL of a closed (or reversed) position; when they cover more
        than the position, reduce the earliest first."""
        position = self.positions.get(symbol)
        for kind in PARTIAL_KINDS:
            held = self.partial_orders(symbol, kind)
            if position is None or any(order.side == position.side for order in held):
                for order in held:
                    self._deactivate(order, "CancelByTpSlTsClear")
                continue
            excess = sum((order.qty for order in held), Decimal(0)) - position.size
            for order in held:
                if excess <= 0:
                    break
                cut = min(excess, order.qty)
                excess -= cut
                if cut == order.qty:
                    self._deactivate(order, "CancelByReduceOnly")
                else:
                    order.qty, order.updated_ms = order.qty - cut, self._clock()
                    self._push_order(order)

    def cancel_partial(self, symbol: str, price: Decimal) -> None:
        """A partial take-profit cancelled by hand in Bybit's app: its order Deactivated
        (order push, cancelType CancelByUser); the position itself is unchanged."""
        for order in self.partial_orders(symbol, "PartialTakeProfit"):
            if order.trigger_price == price:
                self._deactivate(order, "CancelByUser")
                return
        raise KeyError(f"no partial take-profit of {symbol} at {price}")

    def _deactivate(self, order: FakeOrder, cancel_type: str) -> None:
        order.status, order.updated_ms, order.cancel_type = (
            "Deactivated",
            self._clock(),
            cancel_type,
        )
        self._push_order(order)

    # -- views -----------------------------------------------------------------------------

    def stop_orders(self, symbol: str) -> list[FakeOrder]:
        """The position's open TP/SL, partial TP/SL and trailing-stop orders, oldest first."""
        return [
            order
            for order in self.orders
            if order.symbol == symbol and order.stop_order_type in STOP_KINDS and order.is_open
        ]

    def partial_orders(self, symbol: str, kind: str | None = None) -> list[FakeOrder]:
        """Open partial TP/SL orders (of ``kind`` if given), oldest first."""
        kinds = PARTIAL_KINDS if kind is None else (kind,)
        return [order for order in self.stop_orders(symbol) if order.stop_order_type in kinds]

    def trailing_stop_price(self, symbol: str) -> Decimal | None:
        """Where the trailing stop would trigger now; None without one, or before it is active."""
        position = self.positions.get(symbol)
        order = self._conditional(symbol, TRAILING)
        if position is None or order is None:
            return None
        return self._trigger_price(position, order)
