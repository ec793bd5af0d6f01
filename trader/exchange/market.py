"""Bybit's public market data (``MarketData``) for linear perpetuals, over pybit 5.17.x:
instruments by REST, tickers from the public stream (``ticker_stream``) or else by REST."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trader.errors import ExchangeError
from trader.exchange.base import StreamHealth, TickerListener
from trader.exchange.bybit_wire import call_pybit, decimal_field, make_http, read_pages
from trader.exchange.ticker_stream import TickerStream
from trader.exchange.venue_gate import VenueGate
from trader.models import Instrument, Ticker

logger = logging.getLogger(__name__)

CATEGORY = "linear"
TRADING = "Trading"
INSTRUMENTS_PAGE = 1000  # Bybit's largest instruments-info page: all of linear in one


def _utc_now() -> datetime:
    return datetime.now(UTC)


# -- parsing: Bybit's camelCase dicts stop here ----------------------------------------------


def _positive(value: Any, name: str) -> Decimal:
    number = decimal_field(value, name)
    if number <= 0:
        raise ExchangeError(f"Bybit sent {name}={value!r:.40}, not a positive decimal")
    return number


def _optional_price(value: Any, name: str) -> Decimal | None:
    # An empty side of the book comes as "" (or not at all).
    if value is None or value == "":
        return None
    return decimal_field(value, name)


def parse_instrument(raw: Mapping[str, Any]) -> Instrument:
    """One entry of ``/v5/market/instruments-info`` (linear) as an ``Instrument``.

    ``max_order_qty`` is ``maxMktOrderQty`` when Bybit sends it: every order the engine sends
    is a market order, and Bybit caps those below the limit-order ``maxOrderQty``.

    ``category=linear`` also lists USDC perpetuals and dated futures: ``contractType`` and
    ``settleCoin`` tell them apart (``Instrument.is_usdt_perpetual``). A linear contract
    settles in its quote coin, which stands in for a ``settleCoin`` left out (as in our own
    instrument snapshots).
    """
    try:
        symbol = str(raw["symbol"])
        price_filter = raw["priceFilter"]
        lot = raw["lotSizeFilter"]
        leverage = raw["leverageFilter"]
        max_qty = lot.get("maxMktOrderQty") or lot["maxOrderQty"]
        settle_coin = raw.get("settleCoin") or raw["quoteCoin"]
        return Instrument(
            symbol=symbol,
            tick_size=_positive(price_filter["tickSize"], "tickSize"),
            qty_step=_positive(lot["qtyStep"], "qtyStep"),
            min_order_qty=_positive(lot["minOrderQty"], "minOrderQty"),
            max_order_qty=_positive(max_qty, "maxOrderQty"),
            min_notional=decimal_field(lot["minNotionalValue"], "minNotionalValue"),
            max_leverage=_positive(leverage["maxLeverage"], "maxLeverage"),
            contract_type=str(raw["contractType"]),
            settle_coin=str(settle_coin),
            status=str(raw["status"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ExchangeError(f"Bybit sent an instrument without {exc!s:.40}") from None


def parse_ticker(raw: Mapping[str, Any], at: datetime) -> Ticker:
    """A REST ticker, or a stream ticker (snapshot merged with its deltas), as a ``Ticker``."""
    try:
        return Ticker(
            symbol=str(raw["symbol"]),
            last=_positive(raw["lastPrice"], "lastPrice"),
            bid=_optional_price(raw.get("bid1Price"), "bid1Price"),
            ask=_optional_price(raw.get("ask1Price"), "ask1Price"),
            at=at,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ExchangeError(f"Bybit sent a ticker without {exc!s:.40}") from None


def _first_of_list(response: Any, what: str) -> Mapping[str, Any] | None:
    """``result.list[0]`` of a Bybit response, or ``None`` for an empty list."""
    try:
        rows = response["result"]["list"]
    except (KeyError, TypeError):
        raise ExchangeError(f"Bybit sent a {what} response without result.list") from None
    if not isinstance(rows, list):
        raise ExchangeError(f"Bybit sent a {what} response whose result.list is not a list")
    if not rows:
        return None
    first = rows[0]
    if not isinstance(first, Mapping):
        raise ExchangeError(f"Bybit sent a {what} entry that is not an object")
    return first


def _collect_instrument(raw: Mapping[str, Any], found: dict[str, Instrument]) -> None:
    """Add one instruments-info row to ``found`` if it trades; a malformed one is logged:
    one bad row must not keep the others from loading."""
    if raw.get("status") != TRADING:
        return
    try:
        instrument = parse_instrument(raw)
    except ExchangeError as exc:
        logger.warning("instrument %s dropped: %s", str(raw.get("symbol"))[:40], exc)
        return
    found[instrument.symbol] = instrument


# -- the adapter ------------------------------------------------------------------------------


class BybitMarketData:
    """``MarketData`` for Bybit linear perpetuals; no keys needed.

    Every pybit call runs in a worker thread (``asyncio.to_thread``); every stream message is
    handed to the event loop, where the listener is called.
    """

    def __init__(
        self,
        rest_url: str,
        ws_public_url: str,
        *,
        stale_after: float = 3.0,
        watchdog_interval: float = 1.0,
        ping_interval: float | None = None,
        reconnect_after: float | None = None,
        now: Callable[[], datetime] = _utc_now,
        gate: VenueGate | None = None,
    ) -> None:
        """``gate``: Bybit's ban of this IP, shared with the trading client (by default, the
        one of ``rest_url``).

        ``stale_after``: seconds after which a ticker the stream does not vouch for (the
        stream is down, or has not sent the symbol since it reconnected) is fetched by REST.
        While the stream is healthy, a symbol it has sent needs no REST call, however quiet.

        The stream's health is Bybit's answers, not the prices' movement: it pings every
        ``ping_interval`` seconds (default 4), and ``reconnect_after`` seconds (default 2.5
        pings) without a pong, an answer to a subscription or a ticker, while symbols are
        watched, it is rebuilt (see ``TickerStream``). Raises ``ValueError`` unless
        ``ping_interval`` is shorter than ``reconnect_after``."""
        self._http = make_http(rest_url, gate=gate)
        self._stale_after = stale_after
        self._now = now

        self._instruments: dict[str, Instrument] = {}
        self._all_loaded = False  # every linear instrument is in _instruments
        self._loading = asyncio.Lock()
        self._latest: dict[str, Ticker] = {}  # the latest ticker per symbol, streamed or covered
        self._seen: dict[str, float] = {}  # monotonic time _latest was last updated
        self._watched: dict[str, float] = {}  # symbol -> monotonic time watch() was called
        self._listener: TickerListener | None = None
        # The stream's watchdog also drives the REST cover, so that both look at one moment.
        self._stream = TickerStream(
            ws_public_url,
            CATEGORY,
            parse=self._parse_streamed,
            on_ticker=self._on_stream_ticker,
            on_check=self._cover_stale,
            watchdog_interval=watchdog_interval,
            ping_interval=ping_interval,
            reconnect_after=reconnect_after,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, listener: TickerListener) -> None:
        self._listener = listener
        await self._stream.start()

    async def stop(self) -> None:
        await self._stream.stop()
        await asyncio.to_thread(self._http.client.close)  # pybit's requests.Session

    # -- instruments -----------------------------------------------------------------------

    async def load_instruments(self) -> None:
        """Every linear instrument Bybit trades, in one paged call, so that ``instrument()``
        answers from memory. Once loaded, a call does nothing. Raises ``ExchangeError``."""
        async with self._loading:
            if self._all_loaded:
                return
            rows = await read_pages(
                "instruments-info",
                self._http.get_instruments_info,
                limit=INSTRUMENTS_PAGE,
                category=CATEGORY,
            )
            found: dict[str, Instrument] = {}
            for raw in rows:
                _collect_instrument(raw, found)
            self._instruments.update(found)
            self._all_loaded = True
            logger.info("loaded %d linear instruments", len(found))

    async def instrument(self, symbol: str) -> Instrument:
        cached = self._instruments.get(symbol)
        if cached is not None:
            return cached
        # Not in the start-up load (listed since, or not trading): ask for this one.
        response = await call_pybit(
            "instruments-info", self._http.get_instruments_info, category=CATEGORY, symbol=symbol
        )
        raw = _first_of_list(response, "instruments-info")
        if raw is None:
            raise ExchangeError(f"{symbol} is not a Bybit linear instrument")
        status = raw.get("status")
        if status != TRADING:
            raise ExchangeError(f"{symbol} is not trading on Bybit (status {status!s:.20})")
        instrument = parse_instrument(raw)
        self._instruments[symbol] = instrument
        return instrument

    # -- tickers ---------------------------------------------------------------------------

    async def ticker(self, symbol: str) -> Ticker:
        current = self._current_ticker(symbol, time.monotonic())
        return current if current is not None else await self._rest_ticker(symbol)

    def _current_ticker(self, symbol: str, now: float) -> Ticker | None:
        """The latest ticker of ``symbol`` if it is current: the healthy stream has sent it
        since it connected (the stream would have pushed any change since), or it is less
        than ``stale_after`` old."""
        latest = self._latest.get(symbol)
        if latest is None:
            return None
        if self._stream.vouches_for(symbol, now):
            return latest
        seen = self._seen.get(symbol)
        return latest if seen is not None and now - seen <= self._stale_after else None

    async def _rest_ticker(self, symbol: str) -> Ticker:
        response = await call_pybit(
            "tickers", self._http.get_tickers, category=CATEGORY, symbol=symbol
        )
        raw = _first_of_list(response, "tickers")
        if raw is None:
            raise ExchangeError(f"Bybit has no ticker for {symbol}")
        return parse_ticker(raw, self._now())

    async def watch(self, symbol: str) -> None:
        if self._stream.is_subscribed(symbol):
            return  # the common case, on an entry's path: nothing to wait for
        # Only symbols Bybit lists may reach the stream (see TickerStream.watch).
        await self.instrument(symbol)
        self._watched.setdefault(symbol, time.monotonic())
        await self._stream.watch(symbol)
        # Without a live stream, the watchdog subscribes it later; REST covers until then.

    async def wait_streamed(self, symbols: Collection[str], timeout: float) -> bool:  # noqa: ASYNC109
        """Wait, ``timeout`` seconds at most, until the stream has sent the ticker of every one
        of ``symbols`` since it connected; whether it has."""
        return await self._stream.wait_carried(symbols, timeout)

    def stream_health(self) -> StreamHealth:
        return self._stream.health(time.monotonic())

    def _parse_streamed(self, raw: Mapping[str, Any]) -> Ticker:
        return parse_ticker(raw, self._now())

    def _on_stream_ticker(self, ticker: Ticker, heard: float) -> None:
        """A stream ticker, on the event loop."""
        self._seen[ticker.symbol] = heard
        self._latest[ticker.symbol] = ticker
        self._deliver(ticker)

    def _deliver(self, ticker: Ticker) -> None:
        if self._listener is None:
            return
        try:
            self._listener(ticker)
        except Exception:
            logger.exception("ticker listener failed on %s", ticker.symbol)

    # -- the REST cover --------------------------------------------------------------------

    async def _cover_stale(self, now: float) -> None:
        """Cover with a REST ticker every watched symbol the stream does not vouch for and
        nothing has updated for ``stale_after``; the stream's watchdog calls this."""
        stale = [
            symbol
            for symbol, since in self._watched.items()
            if not self._stream.vouches_for(symbol, now)
            and now - max(since, self._seen.get(symbol, since)) > self._stale_after
        ]
        if stale:
            await asyncio.gather(*(self._cover_with_rest(symbol) for symbol in stale))

    async def _cover_with_rest(self, symbol: str) -> None:
        """Feed the listener (and ``ticker()``) a REST ticker for a symbol the stream does
        not vouch for."""
        asked = time.monotonic()
        try:
            ticker = await self._rest_ticker(symbol)
        except ExchangeError as exc:
            logger.warning("REST ticker for %s failed: %s", symbol, exc)
            return
        # The stream may have spoken while we waited; its ticker is the newer one then.
        if self._stream.stopped or self._seen.get(symbol, asked - 1) >= asked:
            return
        self._latest[symbol] = ticker
        self._seen[symbol] = asked
        self._deliver(ticker)
