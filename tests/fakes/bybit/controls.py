"""The test controls and inspection helpers of the fake's trading account: keys, wallet, an
instrument's maxLeverage, positions opened elsewhere, partial fills, the position's TP/SL and
trailing-stop orders, and what Bybit or a person does to the account without the client
(closing by hand, removing a stop-loss, liquidation, ADL, delivery).

Every change is pushed on the private stream like any other, before the control returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal

from tests.fakes.bybit.account import FakeAccount
from tests.fakes.bybit.market import FakeInstrument
from tests.fakes.bybit.records import FakePosition
from tests.fakes.bybit.signing import FakeApiKey
from tests.fakes.bybit.trades import FakeClosedPnl, FakeExecution, FakeOrder


def _decimal(value: str | Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class AccountControls:
    """Mixin of ``FakeBybit``."""

    # Provided by FakeBybit.
    account: FakeAccount
    api_keys: dict[str, FakeApiKey]
    instruments: dict[str, FakeInstrument]
    _flush_account: Callable[[], Awaitable[None]]

    # -- keys and money --------------------------------------------------------------------

    def add_api_key(
        self,
        key: str,
        secret: str,
        *,
        read_only: bool = False,
        withdraw: bool = False,
        transfer: bool = False,
        contract_trade: bool = True,
        unified: bool = True,
        sub_member_transfer_list: bool = False,
        permissions: Mapping[str, Sequence[str]] | None = None,
    ) -> FakeApiKey:
        """Accept ``key`` signed with ``secret``; every key trades the one fake account.

        ``permissions`` sets whole groups of ``/v5/user/query-api``'s permissions, over what
        the flags give (e.g. ``{"FiatP2P": ["FiatP2POrder", "Advertising"], "Earn": ["Earn"]}``;
        the groups are ``signing.PERMISSION_GROUPS``)."""
        groups = tuple((group, tuple(rights)) for group, rights in (permissions or {}).items())
        api_key = FakeApiKey(
            key,
            secret,
            read_only=read_only,
            withdraw=withdraw,
            transfer=transfer,
            contract_trade=contract_trade,
            unified=unified,
            sub_member_transfer_list=sub_member_transfer_list,
            groups=groups,
        )
        self.api_keys[key] = api_key
        return api_key

    def set_wallet(self, balance: str | Decimal) -> None:
        """Set the USDT the account owns (walletBalance when nothing is borrowed)."""
        self.account.wallet = Decimal(balance)

    def set_borrow(self, amount: str | Decimal) -> None:
        """Borrow ``amount`` USDT: walletBalance grows by it, borrowAmount and spotBorrow show
        it, equity does not (see ``wallet``)."""
        self.account.borrowed = Decimal(amount)

    def set_fee_rate(self, rate: str | Decimal) -> None:
        self.account.fee_rate = Decimal(rate)

    def set_max_leverage(self, symbol: str, max_leverage: str) -> None:
        """Set ``symbol``'s ``leverageFilter.maxLeverage`` (e.g. "12.50"): instruments-info
        shows it and ``set-leverage`` above it is refused with 110013."""
        instrument = self.instruments[symbol]
        self.instruments[symbol] = dataclasses.replace(instrument, max_leverage=max_leverage)

    def set_symbol_position_mode(self, symbol: str, hedge: bool) -> None:
        """Give ``symbol`` its own position mode, as if set in Bybit's app."""
        self.account.set_symbol_mode(symbol, hedge)

    def partial_fill_next(
        self,
        filled: str | Decimal,
        *,
        symbol: str | None = None,
        status: str = "Cancelled",
    ) -> None:
        """The next market order (of ``symbol``, if given) fills only ``filled`` (may be "0")
        and ends ``status``: "Cancelled" (a linear IOC order cut by its price band) or
        "PartiallyFilledCanceled". Its execution, order, position, wallet and closed PnL all
        agree; a reduce-only order leaves the rest of the position open with its TP/SL."""
        self.account.partial_fill_next(Decimal(filled), symbol, status)

    # -- positions -------------------------------------------------------------------------

    async def open_position(
        self,
        symbol: str,
        side: str,
        qty: str | Decimal,
        price: str | Decimal,
        *,
        leverage: str | Decimal | None = None,
        take_profit: str | Decimal | None = None,
        stop_loss: str | Decimal | None = None,
        created_ms: int | None = None,
        opened_ms: int | None = None,
    ) -> FakePosition:
        """A position already open on the exchange (as if opened elsewhere, no fee charged),
        with its TP/SL orders; pushed to private subscribers like any change. ``created_ms``:
        when the symbol's first position was created (``createdTime``); ``opened_ms``: when
        this one opened (``openTime``)."""
        position = self.account.seed_position(
            symbol,
            side,
            Decimal(qty),
            Decimal(price),
            leverage=_decimal(leverage),
            take_profit=_decimal(take_profit),
            stop_loss=_decimal(stop_loss),
            created_ms=created_ms,
            opened_ms=opened_ms,
        )
        self.account.pushes.append(("position", self.account.position_row(symbol, stream=True)))
        await self._flush_account()
        return position

    async def close_by_hand(self, symbol: str) -> None:
        """Close ``symbol``'s position as a person would on Bybit's own site: a reduce-only
        market order with no orderLinkId of the bot's; pushed like any change."""
        position = self.account.positions[symbol]
        self.account.place_order(
            {
                "category": "linear",
                "symbol": symbol,
                "side": "Sell" if position.side == "Buy" else "Buy",
                "orderType": "Market",
                "qty": str(position.size),
                "reduceOnly": True,
                "positionIdx": 0,
            }
        )
        await self._flush_account()

    async def remove_stop_loss(self, symbol: str) -> None:
        """The trader removes the stop-loss by hand in Bybit's app: stopLoss "0", the SL order
        Deactivated (order push, cancelType CancelByUser), a position push."""
        self.account.remove_stop_loss(symbol)
        await self._flush_account()

    async def cancel_take_profit(self, symbol: str, price: str | Decimal) -> None:
        """The trader cancels one partial take-profit by hand in Bybit's app."""
        self.account.cancel_partial(symbol, Decimal(price))
        await self._flush_account()

    async def liquidate(
        self,
        symbol: str,
        *,
        qty: str | Decimal | None = None,
        price: str | Decimal | None = None,
        exec_type: str | None = None,
        create_type: str | None = None,
    ) -> None:
        """Bybit liquidates ``symbol``'s position at ``price`` (default: the mark price),
        charging the taker fee. The whole of it: a takeover, execType BustTrade, createType
        CreateByTakeOver_PassThrough. With ``qty`` below the size: a laddered liquidation
        (createType CreateByLiq) that shrinks the position and leaves the rest open.
        ``exec_type`` / ``create_type`` override Bybit's values."""
        self.account.liquidate(
            symbol,
            _decimal(qty),
            _decimal(price),
            exec_type=exec_type,
            create_type=create_type,
        )
        await self._flush_account()

    async def auto_deleverage(
        self, symbol: str, *, qty: str | Decimal | None = None, price: str | Decimal | None = None
    ) -> None:
        """Bybit auto-deleverages ``qty`` (default: all) of the position at ``price`` (default:
        the mark price): execType AdlTrade, createType CreateByAdl_PassThrough, no fee."""
        self.account.auto_deleverage(symbol, _decimal(qty), _decimal(price))
        await self._flush_account()

    async def deliver(self, symbol: str, *, price: str | Decimal | None = None) -> None:
        """Delivery or delisting settles the whole position at ``price`` (default: the mark
        price): execType Delivery, createType CreateBySettle, no order behind it."""
        self.account.deliver(symbol, _decimal(price))
        await self._flush_account()

    # -- inspection ------------------------------------------------------------------------

    @property
    def wallet_balance(self) -> Decimal:
        return self.account.wallet

    @property
    def orders(self) -> list[FakeOrder]:
        """Every order, oldest first: those clients placed, the TP/SL conditional ones and
        those Bybit placed itself (liquidation, ADL)."""
        return list(self.account.orders)

    def order(self, order_link_id: str) -> FakeOrder | None:
        """The order placed with ``order_link_id``, if any."""
        return next((o for o in self.account.orders if o.order_link_id == order_link_id), None)

    @property
    def positions(self) -> dict[str, FakePosition]:
        """Open positions by symbol."""
        return dict(self.account.positions)

    def position(self, symbol: str) -> FakePosition | None:
        return self.account.positions.get(symbol)

    def stop_orders(self, symbol: str) -> list[FakeOrder]:
        """``symbol``'s open conditional orders, oldest first: the Full TP/SL, the partial
        TP/SL and the trailing stop."""
        return self.account.stop_orders(symbol)

    def partial_orders(self, symbol: str, kind: str | None = None) -> list[FakeOrder]:
        """``symbol``'s open partial TP/SL orders, oldest first; only ``kind``
        ("PartialTakeProfit" or "PartialStopLoss") if given."""
        return self.account.partial_orders(symbol, kind)

    def trailing_stop_price(self, symbol: str) -> Decimal | None:
        """The price at which ``symbol``'s trailing stop would trigger now (the best last price
        since it became active, less its distance for a long); None before it is active."""
        return self.account.trailing_stop_price(symbol)

    @property
    def executions(self) -> list[FakeExecution]:
        return list(self.account.executions)

    @property
    def closed_pnl(self) -> list[FakeClosedPnl]:
        return list(self.account.closed_pnl)
