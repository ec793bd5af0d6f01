"""Paper trading: simulated fills over Bybit's public market data, with real taker fees.

Market orders fill at the ask (buy) or bid (sell); SL, TP and a trailing stop are watched on
every ticker (a trailing stop's best price is stored, so that a restart resumes it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from trader.clock import Clock
from trader.errors import ExchangeError, NoPosition, OrderRejected
from trader.events import VenueReachable, VenueUnreachable
from trader.exchange.base import (
    Listener,
    MarketData,
    PositionExited,
    PriceUpdated,
    StreamHealth,
    VenuePosition,
)
from trader.exchange.paper_position import PARAMS_ERROR, PaperPosition, check_protection
from trader.exchange.reachability import until_answered
from trader.models import (
    CloseReason,
    EntryOrder,
    ExitOrder,
    Fill,
    Instrument,
    Position,
    TakeProfitLevel,
    Ticker,
    TrailingStop,
)
from trader.pnl import gross_pnl, taker_fee
from trader.rules import exit_trigger
from trader.sizing import balance_reason
from trader.trailing import BestPrices, BestPriceStore, follow, level

log = logging.getLogger(__name__)

# Bybit's codes, so paper and live report the same failures the same way.
INSUFFICIENT_BALANCE = 110007
DUPLICATE_LINK_ID = 110072
STREAM_WAIT = 3.0  # seconds start-up waits for the first tickers of the whitelisted symbols


class PaperExchange:
    """The paper venue: one-way positions, one per symbol, exchange-side SL/TP simulated."""

    mode = "paper"

    def __init__(
        self,
        market: MarketData,
        *,
        fee_rate: Decimal,
        wallet: Decimal,
        clock: Clock,
        trailing_bests: BestPriceStore | None = None,
    ) -> None:
        """``wallet`` is the realised balance now: the starting balance plus every closed
        trade's net PnL, minus the entry fees of positions still open. ``trailing_bests``:
        where the trailing stops' best prices are kept across restarts (None: not kept)."""
        self._bests = BestPrices(trailing_bests, held=self._holds)
        self._market = market
        self._fee_rate = fee_rate
        self._wallet = wallet
        self._clock = clock
        self._book: dict[str, PaperPosition] = {}
        self._link_ids: set[str] = set()
        self._listener: Listener | None = None

    def _holds(self, link_id: str) -> bool:
        return any(entry.link_id == link_id for entry in self._book.values())

    async def start(self, listener: Listener) -> None:
        self._listener = listener
        await self._market.start(self._on_ticker)

    async def stop(self) -> None:
        await self._market.stop()
        await self._bests.close()  # no ticker moves them any more

    @property
    def clock_skew_ms(self) -> int | None:
        return None  # fills are simulated here: no venue clock signs anything

    def streams(self) -> dict[str, StreamHealth]:
        return {"public": self._market.stream_health()}

    async def adopt(self, positions: Sequence[Position]) -> None:
        trailing = any(position.trailing is not None for position in positions)
        bests = await self._bests.load() if trailing else {}
        for position in positions:
            plan = position.take_profits
            self._book[position.symbol] = PaperPosition(
                link_id=position.link_id,
                symbol=position.symbol,
                side=position.side,
                qty=position.qty,
                entry_price=position.entry_price,
                leverage=position.leverage,
                stop_loss=position.stop_loss,
                # Several take-profits, or none at all (0: their placing failed).
                take_profit=None if plan or position.take_profit <= 0 else position.take_profit,
                trailing=position.trailing,
                partial_tps=[] if plan is None else list(plan.levels[plan.filled() :]),
                # Where it was when stored: not active yet (None) resumes as if just set.
                best=bests.get(position.link_id) if position.trailing is not None else None,
            )
            self._link_ids.add(position.link_id)
        if positions:
            # Their SL/TP are simulated on Bybit's prices: wait for Bybit if it does not
            # answer (/status answers meanwhile), rather than fail start-up.
            symbols = [position.symbol for position in positions]
            await until_answered(
                lambda: self._watch(symbols), self._tell, self._clock, simulated=True
            )

    def _tell(self, event: VenueUnreachable | VenueReachable) -> None:
        if self._listener is not None:
            self._listener(event)

    async def _watch(self, symbols: Sequence[str]) -> None:
        for symbol in symbols:
            await self._market.watch(symbol)

    async def instrument(self, symbol: str) -> Instrument:
        return await self._market.instrument(symbol)

    async def ticker(self, symbol: str) -> Ticker:
        return await self._market.ticker(symbol)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        instrument = await self._market.instrument(symbol)
        if leverage > instrument.max_leverage:
            raise OrderRejected(
                f"leverage {leverage}x exceeds {symbol}'s maximum {instrument.max_leverage}x",
                code=PARAMS_ERROR,
            )

    async def prepare(self, symbols: Sequence[str], leverage: int) -> None:
        """Every instrument loaded and ``symbols`` streamed; the paper venue keeps no
        leverage or position mode of its own."""
        try:
            await self._market.load_instruments()
        except ExchangeError as exc:
            log.warning("loading Bybit's instruments failed: %s; each is read at its entry", exc)
        streamed = []
        for symbol in dict.fromkeys(symbols):
            try:
                instrument = await self._market.instrument(symbol)
                if not instrument.is_usdt_perpetual:
                    log.warning(
                        "whitelisted %s is not a USDT perpetual: its signals are rejected", symbol
                    )
                    continue
                await self._market.watch(symbol)
            except ExchangeError as exc:
                log.warning("whitelisted %s cannot be traded: %s", symbol, exc)
                continue
            streamed.append(symbol)
        if not await self._market.wait_streamed(streamed, STREAM_WAIT):
            log.warning("the public stream is not carrying %s yet: REST prices meanwhile", streamed)

    async def prepare_entry(self, symbol: str, leverage: int) -> Ticker:
        await self.set_leverage(symbol, leverage)
        # Watched before the fill, so that no ticker after it is missed by SL/TP.
        await self._market.watch(symbol)
        return await self._market.ticker(symbol)

    async def balance(self) -> Decimal:
        return self._wallet

    # Reconciliation: the paper venue lives in this process, so it always agrees with the
    # database, and a restart forgets its orders (an order still pending was never filled).

    async def positions(self) -> list[VenuePosition]:
        return [
            VenuePosition(
                symbol=entry.symbol,
                side=entry.side,
                qty=entry.qty,
                entry_price=entry.entry_price,
                leverage=Decimal(entry.leverage),
                stop_loss=entry.stop_loss,
                take_profit=entry.take_profit,
                opened_at=None,
            )
            for entry in self._book.values()
        ]

    async def find_order(self, link_id: str) -> Fill | None:
        return None

    async def take_profit_orders(self, symbol: str) -> list[TakeProfitLevel]:
        held = [entry.partial_tps for entry in self._book.values() if entry.symbol == symbol]
        return sorted((tp for tps in held for tp in tps), key=lambda tp: tp.price)

    async def set_stop_loss(self, symbol: str, price: Decimal) -> None:
        """As Bybit: refused (10001) where the last price has passed it already (below it
        for a long's stop, above for a short's)."""
        entry = self._book.get(symbol)
        if entry is None:
            return
        last = (await self._market.ticker(symbol)).last
        if entry.side.sign * (last - price) <= 0:
            raise OrderRejected(
                f"stop-loss {price} is not on the losing side of the last price {last}",
                code=PARAMS_ERROR,
            )
        entry.stop_loss = price

    async def set_trailing_stop(self, symbol: str, trailing: TrailingStop) -> None:
        """As Bybit does: it follows the last price from now on, active at once when that is
        at or beyond ``trailing.active_price`` already."""
        ticker = await self._market.ticker(symbol)
        entry = self._book.get(symbol)
        if entry is None:
            raise NoPosition(
                f"no position in {symbol} to set a trailing stop on", code=PARAMS_ERROR
            )
        entry.trailing = trailing
        entry.best = None
        self._trail(entry, ticker.last)

    async def set_take_profit(self, symbol: str, price: Decimal, qty: Decimal) -> None:
        """As Bybit's partial take-profit: ``qty`` closes at the book once the last price
        reaches ``price``; together they cover at most the position."""
        entry = self._book.get(symbol)
        if entry is None:
            raise NoPosition(f"no position in {symbol} to set a take-profit on", code=PARAMS_ERROR)
        if sum((tp.qty for tp in entry.partial_tps), qty) > entry.qty:
            raise OrderRejected("the take-profits exceed the position", code=PARAMS_ERROR)
        last = (await self._market.ticker(symbol)).last
        if entry.side.sign * (price - last) <= 0:  # as Bybit: refused once passed
            raise OrderRejected(
                f"take-profit {price} is not on the winning side of the last price {last}",
                code=PARAMS_ERROR,
            )
        entry.partial_tps.append(TakeProfitLevel(price, qty))

    async def exits_since(self, symbol: str, since: datetime) -> list[tuple[Fill, CloseReason]]:
        return []

    def available(self) -> Decimal:
        """Wallet less the margin held by open positions."""
        return self._wallet - sum((entry.margin for entry in self._book.values()), Decimal(0))

    async def open(self, order: EntryOrder) -> Fill:
        if order.link_id in self._link_ids:
            raise OrderRejected("duplicate orderLinkId", code=DUPLICATE_LINK_ID)
        if order.symbol in self._book:
            raise OrderRejected(f"{order.symbol} already has a position", code=PARAMS_ERROR)
        # Watch before the fill so no ticker after it is missed by SL/TP.
        await self._market.watch(order.symbol)
        ticker = await self._market.ticker(order.symbol)
        price = ticker.fill_price(order.side)
        check_protection(order.side, price, order.stop_loss, order.take_profit)
        fee = taker_fee(order.qty, price, self._fee_rate)
        margin = order.qty * price / order.leverage
        if balance_reason(margin + fee, self.available()) is not None:
            raise OrderRejected(
                f"insufficient balance: needs {margin + fee:.2f} USDT, "
                f"available {self.available():.2f} USDT",
                code=INSUFFICIENT_BALANCE,
            )
        self._link_ids.add(order.link_id)
        self._book[order.symbol] = PaperPosition(
            link_id=order.link_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            entry_price=price,
            leverage=order.leverage,
            stop_loss=order.stop_loss,
            take_profit=order.take_profit,
        )
        self._wallet -= fee
        return Fill(
            link_id=order.link_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            price=price,
            fee=fee,
            at=self._clock.now(),
        )

    async def close(self, order: ExitOrder) -> Fill:
        entry = self._book.get(order.symbol)
        if entry is None or entry.side is not order.side.opposite:
            raise NoPosition(
                f"no {order.side.opposite.label.lower()} position in {order.symbol} to reduce",
                code=PARAMS_ERROR,
            )
        ticker = await self._market.ticker(order.symbol)
        # A trigger may have closed it while we awaited the price.
        if self._book.get(order.symbol) is not entry:
            raise NoPosition(f"{order.symbol} position already closed", code=PARAMS_ERROR)
        return self._exit(entry, ticker)

    def _exit(self, entry: PaperPosition, ticker: Ticker, qty: Decimal | None = None) -> Fill:
        """Close ``qty`` of the position (None: all of it) at the book."""
        qty = entry.qty if qty is None else min(qty, entry.qty)
        entry.qty -= qty
        if entry.qty <= 0:
            del self._book[entry.symbol]
        exit_side = entry.side.opposite
        price = ticker.fill_price(exit_side)
        fee = taker_fee(qty, price, self._fee_rate)
        self._wallet += gross_pnl(entry.side, qty, entry.entry_price, price) - fee
        return Fill(
            link_id=entry.link_id,
            symbol=entry.symbol,
            side=exit_side,
            qty=qty,
            price=price,
            fee=fee,
            at=self._clock.now(),
        )

    def _on_ticker(self, ticker: Ticker) -> None:
        """Every ticker: check the simulated SL, trailing stop and TP first, then pass the
        price on."""
        entry = self._book.get(ticker.symbol)
        if entry is not None:
            # Bybit triggers SL/TP on the last price by default; the exit then fills at the book.
            trailing = self._trail(entry, ticker.last)
            take = entry.take_profit
            if take is None:  # several take-profits: no full one
                take = Decimal("Infinity") * entry.side.sign
            reason = exit_trigger(entry.side, ticker.last, entry.stop_loss, take, trailing)
            if reason is not None:
                fill = self._exit(entry, ticker)
                self._emit(PositionExited(symbol=ticker.symbol, fill=fill, reason=reason))
            else:
                self._take_profits(entry, ticker)
        self._emit(PriceUpdated(ticker))

    def _take_profits(self, entry: PaperPosition, ticker: Ticker) -> None:
        """The partial take-profits the last price reached, nearest first, each filling its
        qty at the book (the stop-loss was checked first: it wins when both are crossed)."""
        while entry.partial_tps and entry.qty > 0:
            tp = entry.partial_tps[0]
            if entry.side.sign * (ticker.last - tp.price) < 0:
                return
            entry.partial_tps.pop(0)
            fill = replace(self._exit(entry, ticker, tp.qty), trigger_price=tp.price)
            flat = entry.qty <= 0
            reason = CloseReason.TAKE_PROFIT
            self._emit(PositionExited(symbol=ticker.symbol, fill=fill, reason=reason, flat=flat))

    def _trail(self, entry: PaperPosition, last: Decimal) -> Decimal | None:
        """Follow ``last`` with the position's trailing stop: where it stands now, or None
        (none, or not active yet)."""
        if entry.trailing is None:
            return None
        best = follow(entry.side, last, entry.best, entry.trailing.active_price)
        if best is None:
            return None
        if best != entry.best:
            entry.best = best
            self._bests.moved(entry.link_id, best)
        return level(entry.side, best, entry.trailing.distance)

    def _emit(self, event: PriceUpdated | PositionExited) -> None:
        if self._listener is None:
            return
        try:
            self._listener(event)
        except Exception:
            log.exception("exchange listener failed on %s", type(event).__name__)
