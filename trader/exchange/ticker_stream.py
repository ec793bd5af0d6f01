"""Bybit's public ticker stream for the market data adapter: one pybit socket, its subscriptions,
reconnects and a watchdog that judges it by Bybit's pongs, handing each ticker to its owner."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from trader.errors import ExchangeError
from trader.exchange.base import CONNECTED, IDLE, RECONNECTING, StreamHealth
from trader.exchange.bybit_stream import CLOSE_TIMEOUT, BybitSocket
from trader.models import Ticker

logger = logging.getLogger(__name__)

_MAX_RECONNECT_DELAY = 30.0  # seconds between attempts while the stream cannot connect
# Seconds between pings. Bybit recommends one every 20 s; more often, a stream that
# has stopped answering is found sooner, for a few bytes.
PING_INTERVAL = 4.0
# The default deadline for a sign of life, in ping intervals: two pongs missed, and room for
# a slow round trip.
INTERVALS_TO_DEADLINE = 2.5

# A raw stream ticker (snapshot merged with its deltas) as a ``Ticker``; raises ExchangeError.
TickerParser = Callable[[Mapping[str, Any]], Ticker]
# A stream ticker and the monotonic time it was heard, on the event loop.
TickerHandler = Callable[[Ticker, float], None]
# The owner's share of each watchdog round, after the stream's, with the round's monotonic time.
CheckHook = Callable[[float], Awaitable[None]]


class TickerStream:
    """The tickers of the watched symbols over one public pybit socket of ``category``.

    It subscribes every watched symbol and rebuilds a socket that is closed or has stopped
    answering. Bybit pushes a ticker only when it changes, so a quiet market says nothing for
    minutes; but Bybit answers every ping with a pong and every subscription with a reply,
    and those are what tell a live socket from a dead one. It knows which symbols the current
    socket has sent: while that socket is healthy its latest ticker of them is current,
    however old.
    """

    def __init__(
        self,
        url: str,
        category: str,
        *,
        parse: TickerParser,
        on_ticker: TickerHandler,
        on_check: CheckHook,
        watchdog_interval: float,
        ping_interval: float | None = None,
        reconnect_after: float | None = None,
    ) -> None:
        """``ping_interval``: seconds between pings (default ``PING_INTERVAL``, or shorter if
        ``reconnect_after`` asks for it). ``reconnect_after``: seconds without a pong, an
        answer to a subscription or a ticker, while symbols are watched, after which the socket
        is rebuilt (default ``INTERVALS_TO_DEADLINE`` pings); a subscription unanswered for as
        long counts too. The watchdog looks every ``watchdog_interval`` seconds and then calls
        ``on_check``. Raises ``ValueError`` unless a pong can come before the deadline."""
        if ping_interval is None:
            ping_interval = PING_INTERVAL
            if reconnect_after is not None:
                ping_interval = min(ping_interval, reconnect_after / INTERVALS_TO_DEADLINE)
        if reconnect_after is None:
            reconnect_after = INTERVALS_TO_DEADLINE * ping_interval
        if not 0 < ping_interval < reconnect_after:
            raise ValueError(
                f"pings every {ping_interval} s cannot show life within {reconnect_after} s"
            )
        self._url = url
        self._category = category
        self._parse = parse
        self._on_ticker = on_ticker
        self._on_check = on_check
        self._watchdog_interval = watchdog_interval
        self._ping_interval = ping_interval
        self._reconnect_after = reconnect_after

        self._watched: set[str] = set()
        # Symbols whose ticker the current socket has sent (see the class docstring).
        self._current: set[str] = set()
        self._generation = 0  # counts sockets, so a late message of an old one is known
        self._current_grew = asyncio.Event()  # set (and replaced) when _current grows
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._stopped = False  # read by pybit's thread too

        # The socket and its subscriptions change only under _lock.
        self._lock = asyncio.Lock()
        self._socket: BybitSocket | None = None
        self._subscribed: set[str] = set()
        # Monotonic time of the socket's last sign of life: connecting, a pong, an answer to a
        # subscription, a ticker.
        self._alive_at = 0.0
        # Monotonic times the socket's unanswered subscriptions were sent, oldest first: Bybit
        # answers them in order.
        self._unanswered: list[float] = []
        self._reconnecting: asyncio.Task[None] | None = None
        self._connecting: asyncio.Task[BybitSocket | None] | None = None
        self._reconnect_delay = watchdog_interval
        self._next_connect = 0.0  # monotonic time before which no new connect is tried
        # For health checks: whether the socket was last seen healthy, since when
        # (monotonic), and how many sockets have connected.
        self._up = False
        self._changed_at = time.monotonic()
        self._connects = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        async with self._lock:
            await self._replace_socket("starting")
        self._watchdog = asyncio.create_task(self._watch(), name="market-data-watchdog")

    async def stop(self) -> None:
        self._stopped = True
        for task in (self._watchdog, self._reconnecting):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watchdog = self._reconnecting = None
        async with self._lock:
            sockets = [self._socket, await self._finish_connecting()]
            self._socket = None
            self._subscribed.clear()
            for socket in {id(s): s for s in sockets if s is not None}.values():
                await self._close_socket(socket)

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def _finish_connecting(self) -> BybitSocket | None:
        """The socket of a connect cut short by stop(), once its thread is done with it."""
        connecting, self._connecting = self._connecting, None
        if connecting is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(connecting), CLOSE_TIMEOUT)
        except TimeoutError:
            # _open_socket() sees _stopped when it gets through, and closes the socket itself.
            logger.warning("public stream: stopped while still connecting")
        except Exception:
            pass  # the failure was logged by whoever awaited it
        return None

    # -- what the owner asks ---------------------------------------------------------------

    def is_subscribed(self, symbol: str) -> bool:
        return symbol in self._subscribed

    def health(self, now: float) -> StreamHealth:
        """The socket as a health check sees it at monotonic ``now``. With no symbol
        watched, a socket down is idle: the watchdog rebuilds it once one is."""
        up = self._problem(now) is None
        state = CONNECTED if up else RECONNECTING if self._watched else IDLE
        since = self._changed_at if up == self._up else now
        return StreamHealth(state, max(now - since, 0.0), max(self._connects - 1, 0))

    def _note(self, up: bool, now: float) -> None:
        if up != self._up:
            self._up, self._changed_at = up, now

    def vouches_for(self, symbol: str, now: float) -> bool:
        """Whether the healthy socket has sent ``symbol`` since it connected (so the latest
        ticker of it is current: the socket would have pushed any change since)."""
        return symbol in self._current and self._problem(now) is None

    async def watch(self, symbol: str) -> None:
        """Carry ``symbol`` from now on, on this socket and every one after it. The caller has
        checked that Bybit lists it: a refused subscription kills pybit's socket thread (it
        indexes a string as the topic list)."""
        self._watched.add(symbol)
        if self._reconnecting is not None and not self._reconnecting.done():
            return  # the reconnect, or the watchdog after it, subscribes every watched symbol
        async with self._lock:
            if self._socket is not None and self._socket.is_live():
                await self._subscribe([symbol])
        # Without a live socket, the watchdog subscribes it later.

    async def wait_carried(self, symbols: Collection[str], timeout: float) -> bool:  # noqa: ASYNC109
        """Wait, ``timeout`` seconds at most, until the socket has sent the ticker of every one
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

    # -- the socket ------------------------------------------------------------------------

    async def _subscribe(self, symbols: Iterable[str]) -> None:
        """Subscribe the current socket to the tickers of ``symbols`` it does not have yet."""
        socket = self._socket
        missing = sorted(set(symbols) - self._subscribed)
        if socket is None or not missing:
            return
        # Counted before the call: the answer may reach the loop before the call returns.
        asked = time.monotonic()
        self._unanswered.append(asked)
        try:
            # pybit raises if a topic is subscribed twice: _subscribed guards against that.
            on_message = functools.partial(self._on_message, self._generation)
            await asyncio.to_thread(socket.ticker_stream, missing, on_message)
        except Exception as exc:
            with contextlib.suppress(ValueError):
                self._unanswered.remove(asked)  # not sent, so never answered
            logger.warning("public stream: subscribing %s failed: %r", missing, exc)
            return
        self._subscribed.update(missing)

    async def _replace_socket(self, reason: str) -> None:
        """Close the current socket and open a new one subscribed to every watched symbol.

        Runs under ``_lock``. A failure is logged; the watchdog tries again later.
        """
        old, self._socket = self._socket, None
        self._subscribed.clear()
        self._current.clear()
        self._unanswered.clear()
        self._generation += 1
        if old is not None:
            self._note(False, time.monotonic())
            logger.warning("public stream: %s; reconnecting", reason)
            await self._close_socket(old)
        # Shielded: if we are cancelled (by stop()), the connect goes on in its thread, and
        # stop() collects its socket from _connecting to close it.
        opening = functools.partial(self._open_socket, self._generation)
        self._connecting = asyncio.ensure_future(asyncio.to_thread(opening))
        try:
            socket = await asyncio.shield(self._connecting)
        except Exception as exc:
            self._connecting = None
            self._next_connect = time.monotonic() + self._reconnect_delay
            self._reconnect_delay = min(2 * self._reconnect_delay, _MAX_RECONNECT_DELAY)
            logger.warning("public stream: cannot connect to %s: %r", self._url, exc)
            return
        self._connecting = None
        if socket is None:
            return
        self._socket = socket
        self._alive_at = time.monotonic()  # its first pong is due a ping interval from now
        if socket.is_live():  # pybit hands back a socket whose handshake was refused, too
            self._connects += 1
            self._note(True, self._alive_at)
        self._reconnect_delay = self._watchdog_interval
        logger.info("public stream: connected to %s", self._url)
        await self._subscribe(self._watched)

    def _open_socket(self, generation: int) -> BybitSocket | None:
        """Connect a new socket. Blocking: runs in a worker thread."""
        socket = BybitSocket(
            self._url,
            self._category,
            on_subscribed=functools.partial(self._hop, self._on_answer, generation),
            on_pong=functools.partial(self._hop, self._on_pong, generation),
            ping_interval=self._ping_interval,
            # Only our pong deadline judges the socket: a protocol-level timeout tighter than
            # it would close a socket Bybit still answers.
            ping_timeout=None,
        )
        if self._stopped:  # stop() gave up waiting for us; nobody else would close it
            socket.close()
            return None
        return socket

    async def _close_socket(self, socket: BybitSocket) -> None:
        try:
            await asyncio.to_thread(socket.close)
        except Exception as exc:
            logger.warning("public stream: closing failed: %r", exc)

    def _hop(self, handler: Callable[..., None], *args: Any) -> None:
        """Call ``handler(*args)`` on the loop; from pybit's thread, so it never raises."""
        loop = self._loop
        if loop is not None and not self._stopped:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(handler, *args)

    def _on_pong(self, generation: int) -> None:
        """Bybit answered a ping, on the event loop."""
        if generation == self._generation:
            self._alive_at = time.monotonic()

    def _on_answer(self, generation: int, accepted: bool, message: str) -> None:
        """Bybit answered a subscription, on the event loop."""
        if generation != self._generation:
            return
        self._alive_at = time.monotonic()
        if self._unanswered:
            self._unanswered.pop(0)
        if not accepted:
            # Its symbols stay off this socket; the REST cover serves them.
            logger.warning("public stream: Bybit refused a subscription: %s", message)

    def _on_message(self, generation: int, message: Any) -> None:
        """pybit's ticker callback, on pybit's socket thread. It must never raise: an exception
        here ends pybit's socket thread for good."""
        try:
            loop = self._loop
            if loop is None or self._stopped:
                return
            # pybit hands us its own ticker dict and updates it in place on the next delta.
            raw = dict(message["data"])
            loop.call_soon_threadsafe(self._on_raw_ticker, raw, generation)
        except Exception:
            with contextlib.suppress(Exception):
                logger.warning("public stream: message dropped", exc_info=True)

    def _on_raw_ticker(self, raw: dict[str, Any], generation: int) -> None:
        """A stream ticker, on the event loop."""
        if self._stopped:
            return
        try:
            ticker = self._parse(raw)
        except ExchangeError as exc:
            logger.warning("public stream: bad ticker dropped: %s", exc)
            return
        heard = time.monotonic()
        if generation == self._generation:  # not a late one from the socket we replaced
            self._alive_at = heard
            if ticker.symbol not in self._current:
                self._current.add(ticker.symbol)
                self._current_grew.set()
                self._current_grew = asyncio.Event()
        self._on_ticker(ticker, heard)

    # -- the watchdog ----------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._watchdog_interval)
            try:
                await self._check()
            except Exception:
                logger.exception("market data watchdog: check failed")

    async def _check(self) -> None:
        """Rebuild a closed or unanswering socket (in the background: a connect can take
        long), then let the owner cover what the socket does not vouch for."""
        if not self._watched:
            return
        now = time.monotonic()
        problem = self._problem(now)
        self._note(problem is None, now)
        reconnecting = self._reconnecting is not None and not self._reconnecting.done()
        if problem is not None and not reconnecting and now >= self._next_connect:
            self._reconnecting = asyncio.create_task(self._reconnect(problem))
        elif problem is None and not self._lock.locked():
            async with self._lock:  # symbols watched while the socket was down
                await self._subscribe(self._watched)
        await self._on_check(now)

    async def _reconnect(self, reason: str) -> None:
        try:
            async with self._lock:
                await self._replace_socket(reason)
        except Exception:
            logger.exception("public stream: reconnect failed")

    def _problem(self, now: float) -> str | None:
        """Why the socket needs rebuilding, or ``None`` if it looks healthy."""
        socket = self._socket
        if socket is None:
            return "no stream"
        if not socket.is_live():
            return "disconnected"
        # Not the tickers' silence: Bybit pushes a ticker only when it changes.
        unheard = now - self._alive_at
        if unheard > self._reconnect_after:
            return f"no pong for {unheard:.1f}s"
        if self._unanswered and now - self._unanswered[0] > self._reconnect_after:
            return f"a subscription unanswered for {now - self._unanswered[0]:.1f}s"
        return None
