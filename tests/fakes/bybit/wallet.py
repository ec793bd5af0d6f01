"""The unified account's ``wallet-balance`` row (also the ``wallet`` stream's data item), with
its one coin, USDT, computed the way Bybit's wallet-balance docs define the fields.

Borrowing: under Bybit's manual-borrow logic a borrowed amount sits in the coin's
``walletBalance`` and is owed in ``spotBorrow`` (and ``borrowAmount``): "old walletBalance = new
walletBalance - spotBorrow". ``equity`` is the coin's net worth, wallet less what is owed plus
unrealised PnL; ``totalWalletBalance`` sums the coins' wallet balances and ``totalMarginBalance``
is ``totalWalletBalance + totalPerpUPL``, so both include the borrowed amount, while
``totalEquity`` (the sum of the coins' equity) does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.fakes.bybit.common import fmt

ZERO = Decimal(0)


@dataclass(frozen=True)
class WalletFigures:
    own: Decimal  # USDT the account owns: deposits plus realised PnL less fees
    borrowed: Decimal
    unrealised: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    cum_realised: Decimal


def wallet_row(f: WalletFigures) -> dict[str, Any]:
    wallet = f.own + f.borrowed
    equity = f.own + f.unrealised
    margin_balance = wallet + f.unrealised
    available = margin_balance - f.initial_margin
    coin = {
        "coin": "USDT",
        "equity": fmt(equity),
        "usdValue": fmt(equity),
        "walletBalance": fmt(wallet),
        "locked": "0",
        "spotHedgingQty": "0",
        "borrowAmount": fmt(f.borrowed),
        "spotBorrow": fmt(f.borrowed),
        "availableToWithdraw": fmt(max(ZERO, f.own - f.initial_margin)),
        "availableToBorrow": "",
        "accruedInterest": "0",
        "totalOrderIM": "0",
        "totalPositionIM": fmt(f.initial_margin),
        "totalPositionMM": fmt(f.maintenance_margin),
        "unrealisedPnl": fmt(f.unrealised),
        "cumRealisedPnl": fmt(f.cum_realised),
        "bonus": "0",
        "marginCollateral": True,
        "collateralSwitch": True,
    }
    im_rate = fmt(f.initial_margin / equity) if equity > 0 else "0"
    mm_rate = fmt(f.maintenance_margin / equity) if equity > 0 else "0"
    return {
        "accountType": "UNIFIED",
        "accountIMRate": im_rate,
        "accountMMRate": mm_rate,
        "accountIMRateByMp": im_rate,
        "accountMMRateByMp": mm_rate,
        "accountLTV": "0",
        "totalEquity": fmt(equity),
        "totalWalletBalance": fmt(wallet),
        "totalMarginBalance": fmt(margin_balance),
        "totalAvailableBalance": fmt(available),
        "totalPerpUPL": fmt(f.unrealised),
        "totalInitialMargin": fmt(f.initial_margin),
        "totalMaintenanceMargin": fmt(f.maintenance_margin),
        "totalInitialMarginByMp": fmt(f.initial_margin),
        "totalMaintenanceMarginByMp": fmt(f.maintenance_margin),
        "coin": [coin],
    }
