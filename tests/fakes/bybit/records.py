"""The account's positions and their Bybit v5 shapes (``/v5/position/list`` rows and
``position`` pushes); orders, executions and closed PnL are in ``trades``.

A position has three times, as Bybit gives them: ``createdTime``, when a position on that symbol
was first ever created (it survives a close and a reopen), ``openTime`` (ms, an integer), when
the current one opened (0 when flat), and ``updatedTime``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.fakes.bybit.common import CATEGORY, fmt, fmt_step

ZERO = Decimal(0)
MAINTENANCE_RATE = Decimal("0.005")  # Bybit's lowest linear maintenance margin rate


def price_text(value: Decimal | None, tick: str, *, none: str = "0") -> str:
    return none if value is None else fmt_step(value, tick)


@dataclass(frozen=True)
class Steps:
    """An instrument's qty and price steps, for writing numbers the way Bybit does."""

    qty: str
    tick: str


@dataclass(eq=False)
class FakePosition:
    """One open one-way (``positionIdx`` 0) position."""

    symbol: str
    side: str  # "Buy" (long) or "Sell" (short)
    size: Decimal
    entry_price: Decimal
    leverage: Decimal
    steps: Steps
    created_ms: int  # first ever position on this symbol
    opened_ms: int  # this position
    updated_ms: int
    seq: int
    open_fee: Decimal = ZERO  # entry fees not yet allotted to a closed-PnL record
    cur_realised_pnl: Decimal = ZERO  # since this position opened: fees and closed PnL
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    tp_trigger_by: str = "LastPrice"
    sl_trigger_by: str = "LastPrice"
    # The trailing stop (see ``stops``): its price distance, the price that activates it (the
    # last price when it was set without one), and the best price since it became active
    # (None: not active yet).
    trailing_stop: Decimal | None = None
    active_price: Decimal | None = None
    trailing_best: Decimal | None = None

    @property
    def value(self) -> Decimal:
        return self.size * self.entry_price

    @property
    def initial_margin(self) -> Decimal:
        return self.value / self.leverage

    def unrealised_pnl(self, mark: Decimal) -> Decimal:
        move = mark - self.entry_price if self.side == "Buy" else self.entry_price - mark
        return move * self.size

    def to_bybit(
        self, mark: Decimal, cum_realised: Decimal, *, stream: bool = False
    ) -> dict[str, Any]:
        margin = self.initial_margin
        row = {
            "positionIdx": 0,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": self.symbol,
            "side": self.side,
            "size": fmt_step(self.size, self.steps.qty),
            # The stream names the entry price entryPrice (recorded pushes), REST avgPrice.
            ("entryPrice" if stream else "avgPrice"): fmt(self.entry_price),
            "positionValue": fmt(self.value),
            "tradeMode": 0,
            "positionStatus": "Normal",
            "autoAddMargin": 0,
            "adlRankIndicator": 2,
            "leverage": fmt(self.leverage),
            "positionBalance": fmt(margin),
            "markPrice": fmt_step(mark, self.steps.tick),
            "liqPrice": "",
            "bustPrice": "",
            "positionIM": fmt(margin),
            "positionMM": fmt(self.value * MAINTENANCE_RATE),
            "positionIMByMp": fmt(self.size * mark / self.leverage),
            "positionMMByMp": fmt(self.size * mark * MAINTENANCE_RATE),
            "tpslMode": "Full",
            "takeProfit": price_text(self.take_profit, self.steps.tick),
            "stopLoss": price_text(self.stop_loss, self.steps.tick),
            "trailingStop": price_text(self.trailing_stop, self.steps.tick),
            "sessionAvgPrice": "",
            "unrealisedPnl": fmt(self.unrealised_pnl(mark)),
            "curRealisedPnl": fmt(self.cur_realised_pnl),
            "cumRealisedPnl": fmt(cum_realised),
            "seq": self.seq,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.updated_ms),
            "openTime": self.opened_ms,
        }
        return {"category": CATEGORY, **row} if stream else row


@dataclass(frozen=True)
class FlatPosition:
    """A symbol without a position: Bybit lists it (when asked by symbol) with side ``""`` and
    size "0"; in hedge mode as two rows, ``positionIdx`` 1 and 2."""

    symbol: str
    leverage: Decimal
    steps: Steps
    created_ms: int  # of the first position ever on the symbol (or the account's start)
    updated_ms: int
    seq: int  # -1: never traded
    position_idx: int = 0

    def to_bybit(
        self, mark: Decimal, cum_realised: Decimal, *, stream: bool = False
    ) -> dict[str, Any]:
        # A recorded REST row of a flat position has "" where a push has "0".
        empty = "0" if stream else ""
        row = {
            "positionIdx": self.position_idx,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": self.symbol,
            "side": "",
            "size": "0",
            ("entryPrice" if stream else "avgPrice"): "0",
            "positionValue": empty,
            "tradeMode": 0,
            "positionStatus": "Normal",
            "autoAddMargin": 0,
            "adlRankIndicator": 0,
            "leverage": fmt(self.leverage),
            "positionBalance": "0",
            "markPrice": fmt_step(mark, self.steps.tick),
            "liqPrice": "",
            "bustPrice": "",
            "positionIM": "0",
            "positionMM": "0",
            "positionIMByMp": "0",
            "positionMMByMp": "0",
            "tpslMode": "Full",
            "takeProfit": empty,
            "stopLoss": empty,
            "trailingStop": "0",
            "sessionAvgPrice": "",
            "unrealisedPnl": empty,
            "curRealisedPnl": "0",
            "cumRealisedPnl": fmt(cum_realised),
            "seq": self.seq,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.updated_ms),
            "openTime": 0,
        }
        return {"category": CATEGORY, **row} if stream else row
