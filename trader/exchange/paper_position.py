"""A position on the paper venue, as Bybit would hold it: size, entry, its stop-loss and
take-profit (one, or several partial ones), its trailing stop and the best price it followed;
and the check Bybit makes of SL/TP levels against the price (10001 when one is passed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from trader.errors import OrderRejected
from trader.models import Side, TakeProfitLevel, TrailingStop

PARAMS_ERROR = 10001  # Bybit's code for a parameter it refuses


@dataclass(slots=True)
class PaperPosition:
    """A simulated position on the paper venue."""

    link_id: str
    symbol: str
    side: Side
    qty: Decimal
    entry_price: Decimal
    leverage: int
    stop_loss: Decimal
    take_profit: Decimal | None  # None: several take-profits (``partial_tps``) instead
    trailing: TrailingStop | None = None
    best: Decimal | None = None  # the trailing stop's best price since it activated
    partial_tps: list[TakeProfitLevel] = field(default_factory=list)  # not filled yet

    @property
    def margin(self) -> Decimal:
        return self.qty * self.entry_price / self.leverage


def check_protection(side: Side, price: Decimal, stop: Decimal, take: Decimal | None) -> None:
    """Bybit refuses SL/TP on the wrong side of the current price (10001); so do we."""
    if take is None:  # several take-profits follow the fill
        take = Decimal("Infinity") * side.sign
    ok = stop < price < take if side is Side.BUY else take < price < stop
    if not ok:
        raise OrderRejected(
            f"stop-loss {stop} / take-profit {take} are on the wrong side of the price {price}",
            code=PARAMS_ERROR,
        )
