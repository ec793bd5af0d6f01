"""The public side of the fake's market: linear instruments and their tickers, as Bybit shapes
them in ``instruments-info``, ``tickers`` and the ``tickers.X`` stream."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class FakeInstrument:
    """One ``linear`` instrument's contract and trading filters, kept as the strings Bybit
    sends. ``linear`` holds USDT and USDC perpetuals and dated futures alike: ``contract_type``
    and ``settle_coin`` tell them apart."""

    symbol: str
    tick_size: str
    qty_step: str
    min_qty: str
    min_notional: str = "5"
    max_qty: str = "1000000"
    max_mkt_qty: str = "100000"
    max_leverage: str = "100.00"
    status: str = "Trading"
    contract_type: str = "LinearPerpetual"  # or "LinearFutures" (USDT/USDC dated futures)
    settle_coin: str = "USDT"
    quote_coin: str = ""  # "": the settle coin
    base_coin: str = ""  # "": the symbol less its quote coin, "PERP" or "-<expiry>"
    delivery_time: str = "0"  # ms; "0" for a perpetual
    delivery_fee_rate: str = ""  # "" for a perpetual

    @property
    def quote(self) -> str:
        return self.quote_coin or self.settle_coin

    @property
    def base(self) -> str:
        if self.base_coin:
            return self.base_coin
        name = self.symbol.partition("-")[0]
        for suffix in (self.quote, "PERP"):
            if name.endswith(suffix) and name != suffix:
                return name.removesuffix(suffix)
        return name

    @property
    def is_perpetual(self) -> bool:
        return self.contract_type == "LinearPerpetual"

    def to_bybit(self) -> dict[str, Any]:
        """One entry of ``instruments-info``'s ``result.list``, shaped as Bybit sends it."""
        tick = Decimal(self.tick_size)
        decimals = len(self.tick_size.partition(".")[2])
        return {
            "symbol": self.symbol,
            "symbolId": zlib.crc32(self.symbol.encode()) % 100_000,
            "contractType": self.contract_type,
            "status": self.status,
            "baseCoin": self.base,
            "quoteCoin": self.quote,
            "launchTime": "1585526400000",
            "deliveryTime": self.delivery_time,
            "deliveryFeeRate": self.delivery_fee_rate,
            "priceScale": str(decimals),
            "leverageFilter": {
                "minLeverage": "1",
                "maxLeverage": self.max_leverage,
                "leverageStep": "0.01",
            },
            "priceFilter": {
                "minPrice": self.tick_size,
                "maxPrice": str(tick * 19999998),
                "tickSize": self.tick_size,
            },
            "lotSizeFilter": {
                "maxOrderQty": self.max_qty,
                "maxMktOrderQty": self.max_mkt_qty,
                "minOrderQty": self.min_qty,
                "qtyStep": self.qty_step,
                "postOnlyMaxOrderQty": self.max_qty,
                "minNotionalValue": self.min_notional,
            },
            "unifiedMarginTrade": True,
            # Dated futures have no funding: Bybit sends 0 and empty rates for them.
            "fundingInterval": 480 if self.is_perpetual else 0,
            "settleCoin": self.settle_coin,
            "copyTrading": "both" if self.is_perpetual else "none",
            "upperFundingRate": "0.005" if self.is_perpetual else "",
            "lowerFundingRate": "-0.005" if self.is_perpetual else "",
            "isPreListing": False,
            "preListingInfo": None,
            "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
            "symbolType": "",
            "displayName": "",
        }


@dataclass(frozen=True)
class FakeTicker:
    """One symbol's top of book; ``None`` for an empty side of the book."""

    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    mark: Decimal
    index: Decimal

    def to_bybit(self) -> dict[str, str]:
        """The ticker fields shared by REST ``tickers`` and the ``tickers.X`` stream."""
        return {
            "symbol": self.symbol,
            "lastPrice": str(self.last),
            "markPrice": str(self.mark),
            "indexPrice": str(self.index),
            "bid1Price": "" if self.bid is None else str(self.bid),
            "bid1Size": "" if self.bid is None else "12.5",
            "ask1Price": "" if self.ask is None else str(self.ask),
            "ask1Size": "" if self.ask is None else "9.8",
            "prevPrice24h": str(self.last),
            "price24hPcnt": "0",
            "highPrice24h": str(self.last),
            "lowPrice24h": str(self.last),
            "prevPrice1h": str(self.last),
            "openInterest": "1000",
            "openInterestValue": str(self.last * 1000),
            "turnover24h": "0",
            "volume24h": "0",
            "fundingRate": "0.0001",
            "nextFundingTime": "1700006400000",
            "fundingIntervalHour": "8",
            "fundingCap": "0.005",
            "curPreListingPhase": "",
            "preOpenPrice": "",
            "preQty": "",
        }


# symbol, tickSize, qtyStep (= minOrderQty), maxOrderQty, maxMktOrderQty, maxLeverage, price:
# Bybit's USDT perpetuals' filters as of 2025, near enough for sizing and rounding tests.
DEFAULT_INSTRUMENTS: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("BTCUSDT", "0.10", "0.001", "1190.000", "119.000", "100.00", "65000.00"),
    ("ETHUSDT", "0.01", "0.01", "7240.00", "724.00", "100.00", "3400.00"),
    ("SOLUSDT", "0.010", "0.1", "79770.0", "7977.0", "100.00", "150.000"),
    ("XRPUSDT", "0.0001", "1", "1842000", "184200", "75.00", "0.6000"),
    ("DOGEUSDT", "0.00001", "1", "29165000", "2916500", "75.00", "0.15000"),
    ("ADAUSDT", "0.0001", "1", "3050000", "305000", "75.00", "0.4500"),
    ("BNBUSDT", "0.10", "0.01", "1500.00", "150.00", "75.00", "580.00"),
    ("LINKUSDT", "0.001", "0.1", "112000.0", "11200.0", "75.00", "14.000"),
    ("AVAXUSDT", "0.001", "0.1", "54500.0", "5450.0", "50.00", "28.000"),
    ("HYPEUSDT", "0.001", "0.01", "35000.00", "3500.00", "25.00", "30.000"),
    ("TRXUSDT", "0.00001", "1", "8000000", "800000", "75.00", "0.12000"),
    ("YFIUSDT", "1", "0.0001", "11.4000", "1.1400", "50.00", "5200"),
)

# Under category=linear Bybit also lists USDC perpetuals (symbol "<BASE>PERP", settled in USDC) and
# dated futures ("<BASE>USDT-<expiry>", contractType LinearFutures, with a deliveryTime): one of
# each is listed by default, so that nothing can take "linear" to mean "USDT perpetual".
USDC_PERPETUAL = "BTCPERP"
DATED_FUTURE = "BTCUSDT-26DEC26"
DATED_FUTURE_DELIVERY_MS = "1798272000000"  # 2026-12-26 08:00 UTC, Bybit's delivery hour
