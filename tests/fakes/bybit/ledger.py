"""The fake account's books: a USDT wallet, one-way linear positions and the records of every
order, fill and closed PnL; how an execution changes them (Bybit's money rules: the fee on
notional at entry and at exit, closed PnL net of both, the entry fee pro rata); and the TP/SL
conditional orders Bybit keeps for a position.

Every change is queued in ``pushes`` as (topic, data) for the private stream; the server sends
and clears them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from tests.fakes.bybit.common import TAKER_FEE_RATE, params_error
from tests.fakes.bybit.market import FakeInstrument, FakeTicker
from tests.fakes.bybit.records import MAINTENANCE_RATE, ZERO, FakePosition, FlatPosition, Steps
from tests.fakes.bybit.trades import FakeClosedPnl, FakeExecution, FakeOrder
from tests.fakes.bybit.wallet import WalletFigures, wallet_row

Push = tuple[str, dict[str, Any]]  # ("order" | "execution" | "position" | "wallet", data)
DEFAULT_LEVERAGE = Decimal(10)
CONDITIONAL_KINDS = ("TakeProfit", "StopLoss")


def opposite(side: str) -> str:
    return "Sell" if side == "Buy" else "Buy"


class Ledger:
    """The books of one unified account; ``instruments`` and ``tickers`` are the market's own."""

    def __init__(
        self,
        instruments: Mapping[str, FakeInstrument],
        tickers: Mapping[str, FakeTicker],
        clock: Callable[[], int],
    ) -> None:
        self._instruments = instruments
        self._tickers = tickers
        self._clock = clock
        self.wallet = ZERO  # USDT the account owns (walletBalance less any borrowing)
        self.borrowed = ZERO  # USDT borrowed (spotBorrow)
        self.fee_rate = TAKER_FEE_RATE
        self.leverage: dict[str, Decimal] = {}
        self.positions: dict[str, FakePosition] = {}  # open ones only
        self.cum_realised: dict[str, Decimal] = {}
        self.orders: list[FakeOrder] = []  # oldest first
        self.executions: list[FakeExecution] = []
        self.closed_pnl: list[FakeClosedPnl] = []
        self.pushes: list[Push] = []
        self._seq = 0
        self._started_ms = clock()
        self._first_created: dict[str, int] = {}  # symbol -> its first position's creation
        self._symbol_updated: dict[str, int] = {}
        self._symbol_seq: dict[str, int] = {}

    # -- views -----------------------------------------------------------------------------

    def mark(self, symbol: str) -> Decimal:
        return self._tickers[symbol].mark

    def leverage_of(self, symbol: str) -> Decimal:
        return self.leverage.get(symbol, DEFAULT_LEVERAGE)

    def unrealised_pnl(self) -> Decimal:
        return sum((pos.unrealised_pnl(self.mark(s)) for s, pos in self.positions.items()), ZERO)

    def initial_margin(self) -> Decimal:
        return sum((pos.initial_margin for pos in self.positions.values()), ZERO)

    def available_balance(self) -> Decimal:
        """Bybit's totalAvailableBalance: margin balance (wallet + uPnL) less initial margin."""
        return self.wallet + self.borrowed + self.unrealised_pnl() - self.initial_margin()

    def position_row(
        self, symbol: str, *, stream: bool = False, position_idx: int = 0
    ) -> dict[str, Any]:
        cum = self.cum_realised.get(symbol, ZERO)
        pos = self.positions.get(symbol)
        if pos is not None and position_idx == 0:
            return pos.to_bybit(self.mark(symbol), cum, stream=stream)
        flat = FlatPosition(
            symbol=symbol,
            leverage=self.leverage_of(symbol),
            steps=self._steps(symbol),
            created_ms=self._first_created.get(symbol, self._started_ms),
            updated_ms=self._symbol_updated.get(symbol, self._started_ms),
            seq=self._symbol_seq.get(symbol, -1),  # Bybit: -1 for a symbol never traded
            position_idx=position_idx,
        )
        return flat.to_bybit(self.mark(symbol), cum, stream=stream)

    def wallet_row(self) -> dict[str, Any]:
        """One ``wallet-balance`` account (also the ``wallet`` stream's data item)."""
        maintenance = sum((pos.value * MAINTENANCE_RATE for pos in self.positions.values()), ZERO)
        figures = WalletFigures(
            own=self.wallet,
            borrowed=self.borrowed,
            unrealised=self.unrealised_pnl(),
            initial_margin=self.initial_margin(),
            maintenance_margin=maintenance,
            cum_realised=sum(self.cum_realised.values(), ZERO),
        )
        return wallet_row(figures)

    # -- fills -----------------------------------------------------------------------------

    def _fill(self, order: FakeOrder, qty: Decimal | None = None, status: str = "Filled") -> None:
        """Fill ``qty`` of a market ``order`` (all of it by default) at the book in one
        execution, end the order ``status``, and push the order, position and wallet."""
        symbol, side = order.symbol, order.side
        filled = order.qty if qty is None else qty
        if filled > 0:
            self._execute(order, filled, self._book_price(symbol, side), fee_rate=self.fee_rate)
        order.status, order.updated_ms = status, self._clock()
        self._push_order(order)
        position = self.positions.get(symbol)
        # A Full TP/SL attaches to the position; a Partial one becomes orders (see ``stops``).
        attaches = (order.take_profit or order.stop_loss) and order.tpsl_mode != "Partial"
        if position is not None and position.side == side and attaches:
            position.take_profit = order.take_profit or position.take_profit
            position.stop_loss = order.stop_loss or position.stop_loss
            position.tp_trigger_by = order.tp_trigger_by or position.tp_trigger_by
            position.sl_trigger_by = order.sl_trigger_by or position.sl_trigger_by
        if filled > 0:
            self._after_trade(symbol)

    def _execute(
        self,
        order: FakeOrder,
        qty: Decimal,
        price: Decimal,
        *,
        fee_rate: Decimal,
        exec_type: str = "Trade",
        show_price: bool = True,
    ) -> None:
        """One execution of ``qty`` at ``price``: close (part of) an opposite position, open or
        add to one, charge the fee, record the execution and any closed PnL, push the
        execution. A market order shows its fill price as its price, unless ``show_price`` is
        off (Bybit's ADL orders show "0")."""
        symbol, side, now = order.symbol, order.side, self._clock()
        position = self.positions.get(symbol)
        closed = gross = ZERO
        if position is not None and position.side != side:
            closed = min(qty, position.size)
            gross = self._close(position, order, closed, price, fee_rate, exec_type)
        opening = qty - closed
        if opening > 0:
            self._open(symbol, side, opening, price, fee_rate)
        fee = qty * price * fee_rate
        order.cum_exec_qty += qty
        order.cum_exec_value += qty * price
        order.cum_exec_fee += fee
        order.avg_price = order.cum_exec_value / order.cum_exec_qty
        if order.price is None and show_price:
            order.price = price
        execution = FakeExecution(
            exec_id=str(uuid.uuid4()),
            order=order,
            exec_price=price,
            exec_qty=qty,
            exec_fee=fee,
            fee_rate=fee_rate,
            closed_size=closed,
            mark_price=self.mark(symbol),
            exec_ms=now,
            seq=self._next_seq(),
            leaves_qty=max(ZERO, order.qty - order.cum_exec_qty),
            exec_type=exec_type,
            exec_pnl=gross,
        )
        self.executions.append(execution)
        self.pushes.append(("execution", execution.to_bybit(stream=True)))

    def _after_trade(self, symbol: str) -> None:
        self._push_position(symbol)
        self._sync_conditionals(symbol)
        self.pushes.append(("wallet", self.wallet_row()))

    def _close(
        self,
        position: FakePosition,
        order: FakeOrder,
        closed: Decimal,
        price: Decimal,
        fee_rate: Decimal,
        exec_type: str,
    ) -> Decimal:
        """Close ``closed`` of ``position``; the PnL of it before fees."""
        entry = position.entry_price
        gross = (price - entry if position.side == "Buy" else entry - price) * closed
        open_fee = position.open_fee * closed / position.size
        close_fee = closed * price * fee_rate
        net = gross - open_fee - close_fee
        self.wallet += gross - close_fee  # the entry fee was paid at entry
        self.cum_realised[order.symbol] = (
            self.cum_realised.get(order.symbol, ZERO) + gross - close_fee
        )
        record = FakeClosedPnl(
            order,
            closed,
            entry,
            price,
            net,
            open_fee,
            close_fee,
            position.leverage,
            self._clock(),
            exec_type,
        )
        self.closed_pnl.append(record)
        order.closed_pnl += net
        position.open_fee -= open_fee
        position.cur_realised_pnl += gross - close_fee
        position.size -= closed
        self._touch(position)
        if position.size == 0:
            del self.positions[order.symbol]
        return gross

    def _open(
        self, symbol: str, side: str, qty: Decimal, price: Decimal, fee_rate: Decimal
    ) -> None:
        fee = qty * price * fee_rate
        self.wallet -= fee
        self.cum_realised[symbol] = self.cum_realised.get(symbol, ZERO) - fee
        position = self.positions.get(symbol)
        if position is None:
            self.new_position(symbol, side, qty, price, open_fee=fee)
            return
        size = position.size + qty
        position.entry_price = (position.entry_price * position.size + price * qty) / size
        position.size = size
        position.open_fee += fee
        position.cur_realised_pnl -= fee
        self._touch(position)

    def new_position(
        self,
        symbol: str,
        side: str,
        qty: Decimal,
        price: Decimal,
        *,
        open_fee: Decimal = ZERO,
        created_ms: int | None = None,
        opened_ms: int | None = None,
    ) -> FakePosition:
        """A position opening now (or at ``opened_ms``); its ``createdTime`` is the symbol's
        first ever (``created_ms`` says when that was, e.g. long ago)."""
        now = self._clock()
        if created_ms is not None:
            self._first_created[symbol] = created_ms
        first = self._first_created.setdefault(symbol, now if opened_ms is None else opened_ms)
        position = FakePosition(
            symbol=symbol,
            side=side,
            size=qty,
            entry_price=price,
            leverage=self.leverage_of(symbol),
            steps=self._steps(symbol),
            created_ms=first,
            opened_ms=now if opened_ms is None else opened_ms,
            updated_ms=now,
            seq=self._next_seq(),
            open_fee=open_fee,
            cur_realised_pnl=-open_fee,
        )
        self.positions[symbol] = position
        self._touch(position)
        return position

    # -- the position's TP/SL conditional orders --------------------------------------------

    def _conditional(self, symbol: str, kind: str) -> FakeOrder | None:
        for order in reversed(self.orders):
            if order.symbol == symbol and order.stop_order_type == kind and order.is_open:
                return order
        return None

    def _sync_conditionals(self, symbol: str) -> None:
        """Keep one Untriggered TP and one SL order per position, as Bybit lists them; cancel
        them (Deactivated) when the position closes or its TP/SL is cleared."""
        position = self.positions.get(symbol)
        for kind in CONDITIONAL_KINDS:
            order = self._conditional(symbol, kind)
            price = None
            if position is not None:
                price = position.take_profit if kind == "TakeProfit" else position.stop_loss
            if position is None or price is None:
                if order is not None:
                    order.status, order.updated_ms = "Deactivated", self._clock()
                    # Bybit's cancelType for TP/SL cancelled because the position is gone.
                    order.cancel_type = "CancelByTpSlTsClear" if position is None else "UNKNOWN"
                    self._push_order(order)
                continue
            by = position.tp_trigger_by if kind == "TakeProfit" else position.sl_trigger_by
            rising = (kind == "TakeProfit") == (position.side == "Buy")
            if order is None:
                order = self._closing_order(
                    position,
                    position.size,
                    status="Untriggered",
                    close_on_trigger=True,
                    stop_order_type=kind,
                    create_type=f"CreateBy{kind}",
                    trigger_price=price,
                    trigger_by=by,
                    trigger_direction=1 if rising else 2,
                )
                self.orders.append(order)
            elif (order.trigger_price, order.qty, order.trigger_by) == (price, position.size, by):
                continue
            order.trigger_price, order.qty, order.trigger_by = price, position.size, by
            order.updated_ms = self._clock()
            self._push_order(order)

    # -- plumbing --------------------------------------------------------------------------

    def instrument(self, symbol: Any) -> FakeInstrument:
        instrument = self._instruments.get(str(symbol))
        if instrument is None or str(symbol) not in self._tickers:
            raise params_error("params error: symbol invalid")
        return instrument

    def _closing_order(self, position: FakePosition, qty: Decimal, **fields: Any) -> FakeOrder:
        """An order Bybit places itself to close ``qty`` of ``position`` (a TP/SL, a
        liquidation, a delivery): no link id, reduce-only, created now."""
        now = self._clock()
        return FakeOrder(
            order_id=str(uuid.uuid4()),
            order_link_id="",
            symbol=position.symbol,
            side=opposite(position.side),
            qty=qty,
            steps=position.steps,
            created_ms=now,
            updated_ms=now,
            last_price_on_created=self._tickers[position.symbol].last,
            reduce_only=True,
            **fields,
        )

    def _steps(self, symbol: str) -> Steps:
        instrument = self._instruments[symbol]
        return Steps(qty=instrument.qty_step, tick=instrument.tick_size)

    def _book_price(self, symbol: str, side: str) -> Decimal:
        """A market buy takes the best ask, a sell the best bid (the last price if that side of
        the book is empty)."""
        ticker = self._tickers[symbol]
        best = ticker.ask if side == "Buy" else ticker.bid
        return ticker.last if best is None else best

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _touch(self, position: FakePosition) -> None:
        position.updated_ms, position.seq = self._clock(), self._next_seq()
        self._symbol_updated[position.symbol] = position.updated_ms
        self._symbol_seq[position.symbol] = position.seq

    def _push_order(self, order: FakeOrder) -> None:
        self.pushes.append(("order", order.to_bybit(stream=True)))

    def _push_position(self, symbol: str) -> None:
        self.pushes.append(("position", self.position_row(symbol, stream=True)))
