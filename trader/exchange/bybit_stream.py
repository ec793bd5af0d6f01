"""pybit's WebSocket pointed at our URL, closed for good on request, never reconnecting by
itself: the public (``market``) and private (``bybit``) adapters each own their reconnects.

pybit's own reconnect runs on its socket thread, races ``exit()`` and can revive a socket we
are closing; and a refused private login raises on that thread, which ends it for good. Here a
refused login is reported to ``on_auth`` instead, and the socket stays closable.

pybit signs the private login to expire one second after the local clock: a clock a second
behind Bybit's is refused on every login. Here the expiry allows for the measured offset to
Bybit's clock, plus ``LOGIN_VALID_MS``.

pybit pings Bybit every ``ping_interval`` (``{"op": "ping"}``) and drops Bybit's pong without a
word; here each pong is reported to ``on_pong``: on a quiet market it is the only sign that the
stream is alive.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from pybit._http_manager import generate_signature
from pybit.unified_trading import WebSocket

CLOSE_TIMEOUT = 3.0  # seconds to wait for pybit's socket thread, or a connect, to end
CLOSE_GRACE = 0.5  # seconds for the venue to answer our close frame
# How long a private login stays valid on Bybit's clock: enough for the measured offset's
# error (half a round trip) and the login's way there, short enough to be worthless if seen.
LOGIN_VALID_MS = 5000

# pybit's own: a ping every 20 s (as Bybit recommends), and the socket
# closed when a protocol-level pong is 10 s late.
PING_INTERVAL = 20.0
PING_TIMEOUT = 10.0

# (accepted, Bybit's message), called on pybit's thread for each login / subscription answer.
AnswerListener = Callable[[bool, str], None]
# Called on pybit's thread for each of Bybit's answers to a ping.
PongListener = Callable[[], None]


class BybitSocket(WebSocket):  # type: ignore[misc]  # pybit is untyped
    """One pybit v5 WebSocket of ``channel_type`` (``"linear"`` or ``"private"``) at ``url``.

    Blocking: construct, subscribe and close it in a worker thread.
    """

    def __init__(
        self,
        url: str,
        channel_type: str,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        on_auth: AnswerListener | None = None,
        on_subscribed: AnswerListener | None = None,
        on_pong: PongListener | None = None,
        server_offset_ms: int = 0,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float | None = PING_TIMEOUT,
    ) -> None:
        """``server_offset_ms``: Bybit's clock minus ours, for the login's expiry.

        ``ping_interval``: seconds between pings (a protocol-level ping, and pybit's
        ``{"op": "ping"}`` once its pong is back). ``ping_timeout``: seconds after a ping by
        which the protocol-level pong must be back, or the socket is closed; ``None``: never
        (the owner judges by ``on_pong``). It must be shorter than ``ping_interval``."""
        self._url = url  # before super().__init__(), which connects through _connect()
        self._server_offset_ms = server_offset_ms
        self._raw_socket: socket.socket | None = None
        self._on_auth = on_auth
        self._on_subscribed = on_subscribed
        self._on_pong_message = on_pong
        keys: dict[str, Any] = {}
        if channel_type == "private":
            keys = {"api_key": api_key, "api_secret": api_secret}
        # retries=3: pybit raises even when its last allowed attempt succeeds, so 3 means two.
        super().__init__(
            channel_type=channel_type,
            testnet=False,
            restart_on_error=False,
            retries=3,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            **keys,
        )

    def _connect(self, url: str) -> None:
        # pybit formats its own wss:// template here, on the first connect and on reconnects.
        super()._connect(self._url)

    def _on_open(self) -> None:
        # When the connection drops, pybit's exit() forgets the socket without closing it;
        # keep hold of it so that close() can.
        with contextlib.suppress(Exception):
            self._raw_socket = self.ws.sock.sock
        super()._on_open()

    def _auth(self) -> None:
        # pybit's own: expires = local now + 1 s, which a clock behind Bybit's makes past.
        expires = login_expiry_ms(time.time_ns() // 1_000_000, self._server_offset_ms)
        signature = generate_signature(
            self.rsa_authentication, self.api_secret, f"GET/realtime{expires}"
        )
        self.ws.send(json.dumps({"op": "auth", "args": [self.api_key, expires, signature]}))

    def _is_custom_pong(self, message: dict[str, Any]) -> bool:
        # pybit asks this of every message, and drops the ones it says yes to: Bybit's pongs
        # ({"ret_msg": "pong"} on the public stream, {"op": "pong"} on the private one).
        pong = bool(super()._is_custom_pong(message))
        if pong and self._on_pong_message is not None:
            with contextlib.suppress(Exception):  # an exception here would end pybit's thread
                self._on_pong_message()
        return pong

    def _process_auth_message(self, message: dict[str, Any]) -> None:
        # pybit raises on a refused login, on its socket thread: report it instead.
        self.auth = message.get("success") is True
        _answer(self._on_auth, message)

    def _process_subscription_message(self, message: dict[str, Any]) -> None:
        # pybit looks the answer up by req_id, and would raise (ending its thread) if the
        # answer beat its own bookkeeping of the request.
        with contextlib.suppress(Exception):
            super()._process_subscription_message(message)
        _answer(self._on_subscribed, message)

    def is_connected(self) -> bool:
        # pybit's subscribe() waits for a connection with no deadline. This socket never
        # reconnects, so once it has exited that wait would hang a worker thread forever:
        # report "connected" then, and let the send fail fast instead.
        return bool(self.exited) or bool(super().is_connected())

    def is_live(self) -> bool:
        return not self.exited and bool(super().is_connected())

    def close(self) -> None:
        """Close for good and wait (bounded) for pybit's socket thread to end. Blocking."""
        self.handle_error = False
        self.exited = True  # so pybit's error handler takes our own close for no error
        thread = getattr(self, "wst", None)
        if not isinstance(thread, threading.Thread) or thread is threading.current_thread():
            thread = None
        # Say goodbye and let the reader thread take the venue's close reply: it then ends
        # by itself. pybit's exit() alone would close the socket under that thread, which
        # sits in poll() and would not notice before its ping_timeout (10 s).
        connection = getattr(getattr(self, "ws", None), "sock", None)
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.send_close()
        if thread is not None:
            thread.join(CLOSE_GRACE)
        raw = self._raw_socket
        if raw is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_RDWR)  # no reply: wake the reader with an EOF
        self.exit()
        if thread is not None:
            thread.join(CLOSE_TIMEOUT)
        if raw is not None:
            raw.close()


def login_expiry_ms(local_ms: int, server_offset_ms: int) -> int:
    """When a login signed at ``local_ms`` (our clock) expires: ``LOGIN_VALID_MS`` after
    that moment on Bybit's clock, which is ``server_offset_ms`` ahead of ours."""
    return local_ms + server_offset_ms + LOGIN_VALID_MS


def _answer(listener: AnswerListener | None, message: dict[str, Any]) -> None:
    if listener is not None:
        with contextlib.suppress(Exception):
            listener(message.get("success") is True, str(message.get("ret_msg") or "")[:200])
