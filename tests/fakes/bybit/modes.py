"""Position mode (one-way or hedge) per symbol, as Bybit keeps it: "symbol > coin > system
default". A symbol set by itself keeps its mode; switching by coin (settle coin) switches every
symbol of that coin that has no setting of its own and no position or open order, and is the
mode new listings of that coin start in; a symbol with a position or open order keeps the mode
it has. Switching one symbol is refused while it has a position (110024) or open orders (110028).

Hedge mode is listed (two position rows, ``positionIdx`` 1 and 2) and enforced (an order with
``positionIdx`` 0 is refused), but not traded: the fake simulates one-way positions only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.fakes.bybit import params as p
from tests.fakes.bybit.common import BybitError, params_error
from tests.fakes.bybit.ledger import Ledger

HEDGE, ONE_WAY = "3", "0"


class PositionModes(Ledger):
    """The account's position modes, on top of its books."""

    def _init_modes(self) -> None:
        self.coin_hedge: dict[str, bool] = {}  # settle coin -> its mode (absent: one-way)
        self.symbol_hedge: dict[str, bool] = {}  # symbols whose mode differs from the coin's
        self.own_mode: set[str] = set()  # symbols set by symbol

    def hedge_of(self, symbol: str) -> bool:
        if symbol in self.symbol_hedge:
            return self.symbol_hedge[symbol]
        instrument = self._instruments.get(symbol)
        return self.coin_hedge.get(instrument.settle_coin if instrument else "USDT", False)

    def set_symbol_mode(self, symbol: str, hedge: bool) -> None:
        """The symbol's own setting, as if made in Bybit's app: no checks."""
        self.own_mode.add(symbol)
        self.symbol_hedge[symbol] = hedge

    def position_rows(self, symbol: str) -> list[dict[str, Any]]:
        """``/v5/position/list`` rows of ``symbol``: one, or in hedge mode two (Buy side
        ``positionIdx`` 1, Sell side 2)."""
        if self.hedge_of(symbol):
            return [self.position_row(symbol, position_idx=idx) for idx in (1, 2)]
        return [self.position_row(symbol)]

    def busy(self, symbol: str) -> bool:
        """A position or an open order on ``symbol``: its mode cannot change."""
        return symbol in self.positions or any(
            order.symbol == symbol and order.is_open for order in self.orders
        )

    def switch_mode(self, params: Mapping[str, Any]) -> None:
        """``/v5/position/switch-mode`` by ``symbol`` (it has priority) or by ``coin``."""
        p.require_linear(params)
        symbol, coin = params.get("symbol"), params.get("coin")
        if not symbol and not coin:
            raise params_error("params error: symbol or coin is required")
        mode = str(params.get("mode"))
        if mode not in (ONE_WAY, HEDGE):
            raise params_error("params error: mode invalid")
        hedge = mode == HEDGE
        if symbol:
            self._switch_symbol(self.instrument(symbol).symbol, hedge)
        else:
            self._switch_coin(str(coin), hedge)

    def _switch_symbol(self, symbol: str, hedge: bool) -> None:
        instrument = self._instruments[symbol]
        if hedge and instrument.settle_coin == "USDC" and instrument.is_perpetual:
            raise BybitError(110029, "Hedge mode is not available for this symbol")
        if hedge == self.hedge_of(symbol):
            raise BybitError(110025, "Position mode is not modified")
        if symbol in self.positions:
            raise BybitError(
                110024, "You have an existing position, so position mode cannot be switched"
            )
        if self.busy(symbol):
            raise BybitError(110028, "Open orders exist, so you cannot change position mode")
        self.set_symbol_mode(symbol, hedge)

    def _switch_coin(self, coin: str, hedge: bool) -> None:
        symbols = [s for s, i in self._instruments.items() if i.settle_coin == coin]
        if not symbols:
            raise params_error("params error: coin invalid")
        changes = [
            s
            for s in symbols
            if s not in self.own_mode and not self.busy(s) and self.hedge_of(s) != hedge
        ]
        if self.coin_hedge.get(coin, False) == hedge and not changes:
            raise BybitError(110025, "Position mode is not modified")
        for s in symbols:
            if s not in self.own_mode and self.busy(s):
                self.symbol_hedge[s] = self.hedge_of(s)  # keeps the mode it trades in
            elif s not in self.own_mode:
                self.symbol_hedge.pop(s, None)  # follows the coin from now on
        self.coin_hedge[coin] = hedge
