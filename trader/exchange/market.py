"""Bybit's public market data (``MarketData``) for linear perpetuals, over pybit 5.17.x:
instruments and tickers by REST and the public stream, with a watchdog for a silent stream."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trader.errors import ExchangeError
from trader.exchange.base import TickerListener
from trader.exchange.bybit_stream import CLOSE_TIMEOUT, BybitSocket
from trader.exchange.bybit_wire import call_pybit, decimal_field, make_http, read_pages
from trader.exchange.venue_gate import VenueGate
from trader.models import Instrument, Ticker

logger = logging.getLogger(__name__)

CATEGORY = "linear"
TRADING = "Trading"
INSTRUMENTS_PAGE = 1000  # Bybit's largest instruments-info page: all of linear in one
_MAX_RECONNECT_DELAY = 30.0  # seconds between attempts while the stream cannot connect


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
        reconnect_after: float | None = None,
        now: Callable[[], datetime] = _utc_now,
        gate: VenueGate | None = None,
    ) -> None:
        """``gate``: Bybit's ban of this IP, shared with the trading client (by default, the
        one of ``rest_url``).

        ``stale_after``: seconds after which a ticker the stream no longer vouches for (the
        stream is down, or has not sent the symbol since it reconnected) is fetched by REST.
        ``reconnect_after`` (default 3 × ``stale_after``): seconds of a silent stream, while
        symbols are watched, after which the stream is rebuilt."""
        self._http = make_http(rest_url, gate=gate)
        self._ws_url = ws_public_url
        self._stale_after = stale_after
        self._watchdog_interval = watchdog_interval
        self._reconnect_after = 3 * stale_after if reconnect_after is None else reconnect_after
        self._now = now

        self._instruments: dict[str, Instrument] = {}
        self._all_loaded = False  # every linear instrument is in _instruments
        self._loading = asyncio.Lock()
        self._latest: dict[str, Ticker] = {}  # the latest ticker per symbol, streamed or covered
        self._seen: dict[str, float] = {}  # monotonic time _latest was last updated
        # Symbols whose ticker the current stream has sent: Bybit pushes a ticker only when it
        # changes, so while that stream is healthy its latest ticker is current, however old.
        self._current: set[str] = set()
        self._generation = 0  # counts streams, so a late message of an old one is known
        self._current_grew = asyncio.Event()  # set (and replaced) when _current grows
        self._watched: dict[str, float] = {}  # symbol -> monotonic time watch() was called
        self._listener: TickerListener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._stopped = False  # read by pybit's thread too

        # The stream and its subscriptions change only under _stream_lock.
        self._stream_lock = asyncio.Lock()
        self._stream: BybitSocket | None = None
        self._subscribed: set[str] = set()
        self._stream_heard = 0.0  # monotonic time of the last message, or of connecting
        self._reconnecting: asyncio.Task[None] | None = None
        self._connecting: asyncio.Task[BybitSocket | None] | None = None
        self._reconnect_delay = watchdog_interval
        self._next_connect = 0.0  # monotonic time before which no new connect is tried

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, listener: TickerListener) -> None:
        self._listener = listener
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        async with self._stream_lock:
            await self._replace_stream("starting")
        self._watchdog = asyncio.create_task(self._watch_streams(), name="market-data-watchdog")

    async def stop(self) -> None:
        self._stopped = True
        for task in (self._watchdog, self._reconnecting):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watchdog = self._reconnecting = None
        async with self._stream_lock:
            streams = [self._stream, await self._finish_connecting()]
            self._stream = None
            self._subscribed.clear()
            for stream in {id(s): s for s in streams if s is not None}.values():
                await self._close_stream(stream)
        await asyncio.to_thread(self._http.client.close)  # pybit's requests.Session

    async def _finish_connecting(self) -> BybitSocket | None:
        """The socket of a connect cut short by stop(), once its thread is done with it."""
        connecting, self._connecting = self._connecting, None
        if connecting is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(connecting), CLOSE_TIMEOUT)
        except TimeoutError:
            # _open_stream() sees _stopped when it gets through, and closes the socket itself.
            logger.warning("public stream: stopped while still connecting")
        except Exception:
            pass  # the failure was logged by whoever awaited it
        return None

    # -- REST ------------------------------------------------------------------------------

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
        if self._streams_now(symbol, now):
            return latest
        seen = self._seen.get(symbol)
        return latest if seen is not None and now - seen <= self._stale_after else None

    def _streams_now(self, symbol: str, now: float) -> bool:
        return symbol in self._current and self._stream_problem(now) is None

    async def _rest_ticker(self, symbol: str) -> Ticker:
        response = await call_pybit(
            "tickers", self._http.get_tickers, category=CATEGORY, symbol=symbol
        )
        raw = _first_of_list(response, "tickers")
        if raw is None:
            raise ExchangeError(f"Bybit has no ticker for {symbol}")
        return parse_ticker(raw, self._now())

    # -- the stream ------------------------------------------------------------------------

    async def watch(self, symbol: str) -> None:
        if symbol in self._subscribed:
            return  # the common case, on an entry's path: nothing to wait for
        # A refused subscription kills pybit's socket thread (it indexes a string as the
        # topic list), so only symbols Bybit lists ever reach the stream.
        await self.instrument(symbol)
        self._watched.setdefault(symbol, time.monotonic())
        if self._reconnecting is not None and not self._reconnecting.done():
            return  # the reconnect, or the watchdog after it, subscribes every watched symbol
        async with self._stream_lock:
            if self._stream is not None and self._stream.is_live():
                await self._subscribe([symbol])
        # Without a live stream, the watchdog subscribes it later; REST covers until then.

    async def wait_streamed(self, symbols: Collection[str], timeout: float) -> bool:  # noqa: ASYNC109
        """Wait, ``timeout`` seconds at most, until the stream has sent the ticker of every one
        of ``symbols`` since it connected; whether it has."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._current.issuperset(symbols):
            grew, remaining = self._current_grew, deadline - loop.time()
            try:
                await asyncio.wait_for(grew.wait(), max(remaining, 0.0))
            except TimeoutError:
                return False
        return True

    async def _subscribe(self, symbols: Iterable[str]) -> None:
        """Subscribe the current stream to the tickers of ``symbols`` it does not have yet."""
        stream = self._stream
        missing = sorted(set(symbols) - self._subscribed)
        if stream is None or not missing:
            return
        try:
            # pybit raises if a topic is subscribed twice: _subscribed guards against that.
            on_message = functools.partial(self._on_stream_message, self._generation)
            await asyncio.to_thread(stream.ticker_stream, missing, on_message)
        except Exception as exc:
            logger.warning("public stream: subscribing %s failed: %r", missing, exc)
            return
        self._subscribed.update(missing)
        # Silence is counted from the newest subscription: until then there was nothing to say.
        self._stream_heard = max(self._stream_heard, time.monotonic())

    async def _replace_stream(self, reason: str) -> None:
        """Close the current stream and open a new one subscribed to every watched symbol.

        Runs under ``_stream_lock``. A failure is logged; the watchdog tries again later.
        """
        old, self._stream = self._stream, None
        self._subscribed.clear()
        self._current.clear()
        self._generation += 1
        if old is not None:
            logger.warning("public stream: %s; reconnecting", reason)
            await self._close_stream(old)
        self._stream_heard = time.monotonic()  # the new stream's grace period starts now
        # Shielded: if we are cancelled (by stop()), the connect goes on in its thread, and
        # stop() collects its socket from _connecting to close it.
        self._connecting = asyncio.ensure_future(asyncio.to_thread(self._open_stream))
        try:
            stream = await asyncio.shield(self._connecting)
        except Exception as exc:
            self._connecting = None
            self._next_connect = time.monotonic() + self._reconnect_delay
            self._reconnect_delay = min(2 * self._reconnect_delay, _MAX_RECONNECT_DELAY)
            logger.warning("public stream: cannot connect to %s: %r", self._ws_url, exc)
            return
        self._connecting = None
        if stream is None:
            return
        self._stream = stream
        self._reconnect_delay = self._watchdog_interval
        logger.info("public stream: connected to %s", self._ws_url)
        await self._subscribe(self._watched)

    def _open_stream(self) -> BybitSocket | None:
        """Connect a new stream. Blocking: runs in a worker thread."""
        stream = BybitSocket(self._ws_url, CATEGORY)
        if self._stopped:  # stop() gave up waiting for us; nobody else would close it
            stream.close()
            return None
        return stream

    async def _close_stream(self, stream: BybitSocket) -> None:
        try:
            await asyncio.to_thread(stream.close)
        except Exception as exc:
            logger.warning("public stream: closing failed: %r", exc)

    def _on_stream_message(self, generation: int, message: Any) -> None:
        """pybit's ticker callback, on pybit's socket thread. It must never raise: an exception
        here ends pybit's socket thread for good."""
        try:
            loop = self._loop
            if loop is None or self._stopped:
                return
            # pybit hands us its own ticker dict and updates it in place on the next delta.
            raw = dict(message["data"])
            loop.call_soon_threadsafe(self._on_stream_ticker, raw, generation)
        except Exception:
            with contextlib.suppress(Exception):
                logger.warning("public stream: message dropped", exc_info=True)

    def _on_stream_ticker(self, raw: dict[str, Any], generation: int) -> None:
        """A stream ticker, on the event loop."""
        if self._stopped:
            return
        try:
            ticker = parse_ticker(raw, self._now())
        except ExchangeError as exc:
            logger.warning("public stream: bad ticker dropped: %s", exc)
            return
        heard = time.monotonic()
        self._seen[ticker.symbol] = heard
        self._latest[ticker.symbol] = ticker
        if generation == self._generation:  # not a late one from the stream we replaced
            self._stream_heard = heard
            if ticker.symbol not in self._current:
                self._current.add(ticker.symbol)
                self._current_grew.set()
                self._current_grew = asyncio.Event()
        self._deliver(ticker)

    def _deliver(self, ticker: Ticker) -> None:
        if self._listener is None:
            return
        try:
            self._listener(ticker)
        except Exception:
            logger.exception("ticker listener failed on %s", ticker.symbol)

    # -- the watchdog ----------------------------------------------------------------------

    async def _watch_streams(self) -> None:
        while True:
            await asyncio.sleep(self._watchdog_interval)
            try:
                await self._check_streams()
            except Exception:
                logger.exception("market data watchdog: check failed")

    async def _check_streams(self) -> None:
        """Rebuild a dead or silent stream (in the background: a connect can take long), and
        cover with a REST ticker every watched symbol the stream does not vouch for."""
        if not self._watched:
            return
        now = time.monotonic()
        problem = self._stream_problem(now)
        reconnecting = self._reconnecting is not None and not self._reconnecting.done()
        if problem is not None and not reconnecting and now >= self._next_connect:
            self._reconnecting = asyncio.create_task(self._reconnect(problem))
        elif problem is None and not self._stream_lock.locked():
            async with self._stream_lock:  # symbols watched while the stream was down
                await self._subscribe(self._watched)
        stale = [
            symbol
            for symbol, since in self._watched.items()
            if not self._streams_now(symbol, now)
            and now - max(since, self._seen.get(symbol, since)) > self._stale_after
        ]
        if stale:
            await asyncio.gather(*(self._cover_with_rest(symbol) for symbol in stale))

    async def _reconnect(self, reason: str) -> None:
        try:
            async with self._stream_lock:
                await self._replace_stream(reason)
        except Exception:
            logger.exception("public stream: reconnect failed")

    def _stream_problem(self, now: float) -> str | None:
        """Why the stream needs rebuilding, or ``None`` if it looks healthy."""
        stream = self._stream
        if stream is None:
            return "no stream"
        if not stream.is_live():
            return "disconnected"
        silent = now - self._stream_heard
        if silent > self._reconnect_after:
            return f"silent for {silent:.1f}s"
        return None

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
        if self._stopped or self._seen.get(symbol, asked - 1) >= asked:
            return
        self._latest[symbol] = ticker
        self._seen[symbol] = asked
        self._deliver(ticker)
