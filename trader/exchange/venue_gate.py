"""``VenueGate``: Bybit's ban of this IP, shared by every REST client of the process that talks
to the same host, so that none of them sends anything while it lasts.

Bybit answers HTTP 403 ("access too frequent") to an IP that sent too many requests, and asks
that every HTTP session stop for at least 10 minutes. So from the first 403 each request is
refused here, at once and without touching the network (``Banned``), for ``ban_seconds``.
The first request sent after that goes out: an answer (any but another 403) ends the ban; a
403 starts a new period. Listeners hear of a ban once (``VenueBanned``) and of its end
(``VenueBanLifted``), on their own event loop. pybit's requests run on worker threads, so the
gate is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from trader.errors import Banned
from trader.events import VenueBanLifted, VenueBanned

log = logging.getLogger(__name__)

BAN_SECONDS = 600.0  # Bybit: "terminate all HTTP sessions and wait for at least 10 minutes"

GateEvent = VenueBanned | VenueBanLifted
GateListener = Callable[[GateEvent], None]


class VenueGate:
    """Whether REST requests to one venue host may be sent now.

    ``check()`` before sending (raises ``Banned`` during a ban, and returns the moment of
    sending), then ``refused(detail)`` on an HTTP 403 or ``answered(sent_at)`` on any other
    answer. ``banned`` is True from a 403 until a request sent after it is answered.
    """

    def __init__(
        self,
        *,
        ban_seconds: float = BAN_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ban_seconds = ban_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._banned = False  # from a 403 until an answer to a request sent after it
        self._deadline = 0.0  # monotonic time before which nothing is sent
        self._until: datetime | None = None  # the same moment, for people
        self._listeners: list[tuple[GateListener, asyncio.AbstractEventLoop]] = []

    @property
    def banned(self) -> bool:
        """A ban began and no request sent since has been answered."""
        return self._banned

    @property
    def until(self) -> datetime | None:
        """When the current ban's period ends (None when not banned)."""
        return self._until if self.banned else None

    @property
    def closed(self) -> bool:
        """Within a ban's period: a request now would be refused without being sent."""
        with self._lock:
            return self._monotonic() < self._deadline

    def check(self) -> float:
        """The moment a request is sent, to hand back to ``answered``; ``Banned`` instead
        while a ban lasts: then the request must not be sent."""
        with self._lock:
            now = self._monotonic()
            if now < self._deadline:
                until = self._until
                raise Banned(_refusal(until), until=until)
            return now

    def refused(self, detail: str) -> None:
        """Bybit answered HTTP 403: nothing more is sent for ``ban_seconds``."""
        with self._lock:
            now = self._monotonic()
            first = not self._banned
            self._banned = True
            self._deadline = now + self.ban_seconds
            until = datetime.now(UTC) + timedelta(seconds=self.ban_seconds)
            self._until = until
        if first:
            log.error("Bybit banned this IP (%s): no REST call before %s", detail, _hms(until))
            self._tell(VenueBanned(until, detail))
        else:
            log.warning("Bybit still bans this IP (%s): no call before %s", detail, _hms(until))

    def answered(self, sent_at: float) -> None:
        """A request sent at ``sent_at`` (from ``check``) got an answer other than a 403: if
        it was sent after the ban's period, the ban is over."""
        with self._lock:
            if not self._banned or sent_at < self._deadline:
                return  # not banned, or an answer to a request sent before the ban
            self._banned = False
            self._deadline = 0.0
        log.warning("Bybit answers again: the ban on this IP is over")
        self._tell(VenueBanLifted(datetime.now(UTC)))

    def subscribe(self, listener: GateListener) -> Callable[[], None]:
        """Call ``listener`` on the running loop with each ban and its end; returns the
        function that unsubscribes it."""
        entry = (listener, asyncio.get_running_loop())
        with self._lock:
            self._listeners.append(entry)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._listeners.remove(entry)

        return unsubscribe

    def _tell(self, event: GateEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener, loop in listeners:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(_deliver, listener, event)


def _deliver(listener: GateListener, event: GateEvent) -> None:
    try:
        listener(event)
    except Exception:
        log.exception("a listener of the venue gate failed on %s", type(event).__name__)


def _hms(when: datetime) -> str:
    return f"{when:%H:%M:%S} UTC"


def _refusal(until: datetime | None) -> str:
    when = f"until {_hms(until)}" if until is not None else "for now"
    return f"Bybit bans this IP {when} (HTTP 403, too many requests): nothing is sent to it"


# --- one gate per host ---------------------------------------------------------------------

_shared: weakref.WeakValueDictionary[str, VenueGate] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def shared_gate(rest_url: str) -> VenueGate:
    """The gate of ``rest_url``'s host, shared by every client made without one of its own
    (Bybit bans an IP for all of its requests to a host)."""
    host = urlsplit(rest_url).netloc.lower() or rest_url
    with _shared_lock:
        gate = _shared.get(host)
        if gate is None:
            gate = _shared[host] = VenueGate()
        return gate
