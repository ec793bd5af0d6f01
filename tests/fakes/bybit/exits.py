"""Exits Bybit makes itself, and a stop-loss removed by hand in Bybit's app.

Each exit is an execution with its own ``execType`` and a closed-PnL record of that
``execType``, pushed like any fill (execution, order if there is one, position, wallet):

- liquidation: the takeover of a whole position by the liquidation engine is a ``BustTrade``
  of an order created ``CreateByTakeOver_PassThrough``; a laddered liquidation, which shrinks a
  position to lower its maintenance margin and leaves the rest open, is an order created
  ``CreateByLiq`` (Bybit's createType enum). Both charge the taker fee; orderLinkId "".
- auto-deleveraging: ``AdlTrade`` of an order created ``CreateByAdl_PassThrough``, without a fee
  (the recorded ADL push has feeRate and execFee "0") and with orderPrice "0".
- delivery or delisting: ``Delivery``, "recorded as a trade but not an order" (createType
  ``CreateBySettle``): the execution carries an orderId that no order list shows, orderType
  "UNKNOWN" as Bybit's non-order executions do; the whole position closes, at the instrument's
  deliveryFeeRate.
"""

from __future__ import annotations

from decimal import Decimal

from tests.fakes.bybit.modes import PositionModes
from tests.fakes.bybit.records import ZERO, FakePosition


class Exits(PositionModes):
    """Bybit's own exits on the account."""

    def liquidate(
        self,
        symbol: str,
        qty: Decimal | None = None,
        price: Decimal | None = None,
        *,
        exec_type: str | None = None,
        create_type: str | None = None,
    ) -> None:
        position = self._open_position(symbol)
        laddered = qty is not None and qty < position.size
        self._system_exit(
            position,
            qty,
            price,
            exec_type=exec_type or ("Trade" if laddered else "BustTrade"),
            create_type=create_type
            or ("CreateByLiq" if laddered else "CreateByTakeOver_PassThrough"),
            fee_rate=self.fee_rate,
        )

    def auto_deleverage(
        self, symbol: str, qty: Decimal | None = None, price: Decimal | None = None
    ) -> None:
        self._system_exit(
            self._open_position(symbol),
            qty,
            price,
            exec_type="AdlTrade",
            create_type="CreateByAdl_PassThrough",
            fee_rate=ZERO,
            show_price=False,
        )

    def deliver(self, symbol: str, price: Decimal | None = None) -> None:
        rate = self._instruments[symbol].delivery_fee_rate
        self._system_exit(
            self._open_position(symbol),
            None,
            price,
            exec_type="Delivery",
            create_type="CreateBySettle",
            fee_rate=Decimal(rate) if rate else ZERO,
            show_price=False,
            listed=False,
        )

    def remove_stop_loss(self, symbol: str) -> None:
        """The stop-loss cleared by hand in Bybit's app: the position's stopLoss becomes "0"
        and its conditional SL order is Deactivated (cancelType CancelByUser)."""
        position = self._open_position(symbol)
        position.stop_loss = None
        order = self._conditional(symbol, "StopLoss")
        if order is not None:
            order.status, order.updated_ms = "Deactivated", self._clock()
            order.cancel_type = "CancelByUser"
            self._push_order(order)
        self._touch(position)
        self._push_position(symbol)

    def _open_position(self, symbol: str) -> FakePosition:
        position = self.positions.get(symbol)
        if position is None:
            raise ValueError(f"fake: no open {symbol} position")
        return position

    def _system_exit(
        self,
        position: FakePosition,
        qty: Decimal | None,
        price: Decimal | None,
        *,
        exec_type: str,
        create_type: str,
        fee_rate: Decimal,
        show_price: bool = True,
        listed: bool = True,
    ) -> None:
        symbol = position.symbol
        size = position.size if qty is None else qty
        if not ZERO < size <= position.size:
            raise ValueError(f"fake: qty {size} is not within the {symbol} position")
        order = self._closing_order(
            position,
            size,
            order_type="Market" if listed else "UNKNOWN",
            time_in_force="IOC" if listed else "",
            create_type=create_type,
        )
        if listed:
            self.orders.append(order)
        exit_price = self.mark(symbol) if price is None else price
        self._execute(
            order,
            size,
            exit_price,
            fee_rate=fee_rate,
            exec_type=exec_type,
            show_price=show_price,
        )
        order.status = "Filled"
        if listed:
            self._push_order(order)
        self._after_trade(symbol)
