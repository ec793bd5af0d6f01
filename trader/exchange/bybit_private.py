"""Bybit's private side, read: the ``order``, ``execution`` and ``position`` messages (pushed on
the private stream, or answered by REST in the same shapes), parsed here, one function per
message; and ``PrivateStream``, the private WebSocket that pushes them.

Bybit's private topics have no snapshot: what changes while the stream is down is lost to it,
so the adapter covers a gap with REST and reconciles after every reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trader.errors import ExchangeError
from trader.exchange.base import VenuePosition
from trader.exchange.bybit_stream import CLOSE_TIMEOUT, BybitSocket
from trader.exchange.bybit_wire import decimal_field
from trader.models import Fill, Side

log = logging.getLogger(__name__)

TOPICS = ("execution", "order", "position")
# An order in one of these states changes no more.
TERMINAL = frozenset({"Filled", "Cancelled", "Rejected", "PartiallyFilledCanceled", "Deactivated"})
# Executions that move a position: an order's trade, a liquidation, an auto-deleveraging, a
# delivery. Funding and settlement move money only.
TRADE_KINDS = frozenset({"Trade", "BustTrade", "AdlTrade", "Delivery", "BlockTrade"})
CATEGORY = "linear"  # the private topics also carry spot and option data: not ours
MAX_RECONNECT_DELAY = 30.0  # seconds between attempts while the stream cannot connect
AUTH_TIMEOUT = 5.0  # seconds a new connection has to be logged in


# --- Bybit's shapes → ours ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Execution:
    """One trade of one order (``execution`` push, or a ``/v5/execution/list`` row)."""

    exec_id: str
    order_id: str
    link_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    closed_size: Decimal  # > 0: it reduced a position
    stop_order_type: str  # "TakeProfit", "StopLoss", "" ...
    at: datetime
    kind: str = "Trade"  # Bybit's execType: "BustTrade" is a liquidation


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's state (``order`` push, or a ``/v5/order/realtime`` row)."""

    order_id: str
    link_id: str
    symbol: str
    status: str
    cum_exec_qty: Decimal
    closed_pnl: Decimal | None  # Bybit's net PnL of what this order closed
    reject_reason: str

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def _ms(value: Any, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError):
        raise ExchangeError(f"Bybit sent {name}={value!r:.40}, not a time in ms") from None


def _optional_decimal(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    return decimal_field(value, name)


def _price_or_none(value: Any, name: str) -> Decimal | None:
    """A TP/SL price: "" or "0" when none is set."""
    price = _optional_decimal(value, name)
    return price if price is not None and price > 0 else None


def _ours(row: Mapping[str, Any]) -> bool:
    """A linear row (REST rows, asked for by category, may not say it)."""
    return str(row.get("category") or CATEGORY) == CATEGORY


def parse_execution(row: Mapping[str, Any]) -> Execution | None:
    """An execution that traded a linear position, or None (funding, spot, ...)."""
    kind = str(row.get("execType") or "Trade")
    if kind not in TRADE_KINDS or not _ours(row):
        return None
    try:
        return Execution(
            exec_id=str(row["execId"]),
            order_id=str(row["orderId"]),
            link_id=str(row.get("orderLinkId") or ""),
            symbol=str(row["symbol"]),
            side=Side(str(row["side"])),
            qty=decimal_field(row["execQty"], "execQty"),
            price=decimal_field(row["execPrice"], "execPrice"),
            fee=decimal_field(row["execFee"], "execFee"),
            closed_size=_optional_decimal(row.get("closedSize"), "closedSize") or Decimal(0),
            stop_order_type=str(row.get("stopOrderType") or ""),
            at=_ms(row["execTime"], "execTime"),
            kind=kind,
        )
    except (KeyError, ValueError) as exc:
        raise ExchangeError(f"Bybit sent an execution without a valid {exc!s:.40}") from None


def parse_order(row: Mapping[str, Any]) -> OrderUpdate | None:
    if not _ours(row):
        return None
    try:
        return OrderUpdate(
            order_id=str(row["orderId"]),
            link_id=str(row.get("orderLinkId") or ""),
            symbol=str(row["symbol"]),
            status=str(row["orderStatus"]),
            cum_exec_qty=_optional_decimal(row.get("cumExecQty"), "cumExecQty") or Decimal(0),
            closed_pnl=_optional_decimal(row.get("closedPnl"), "closedPnl"),
            reject_reason=str(row.get("rejectReason") or ""),
        )
    except KeyError as exc:
        raise ExchangeError(f"Bybit sent an order without {exc!s:.40}") from None


def parse_position(row: Mapping[str, Any]) -> VenuePosition | None:
    """A ``position`` push or ``/v5/position/list`` row; size 0 means flat."""
    if not _ours(row):
        return None
    try:
        qty = decimal_field(row.get("size") or "0", "size")
        side_text = str(row.get("side") or "")
        created, updated = row.get("createdTime"), row.get("updatedTime")
        return VenuePosition(
            symbol=str(row["symbol"]),
            side=Side(side_text) if qty > 0 and side_text in ("Buy", "Sell") else None,
            qty=qty,
            entry_price=_optional_decimal(row.get("avgPrice") or row.get("entryPrice"), "avgPrice")
            or Decimal(0),
            leverage=_optional_decimal(row.get("leverage"), "leverage") or Decimal(0),
            stop_loss=_price_or_none(row.get("stopLoss"), "stopLoss"),
            take_profit=_price_or_none(row.get("takeProfit"), "takeProfit"),
            opened_at=_ms(created, "createdTime") if created else None,
            updated_at=_ms(updated, "updatedTime") if updated else None,
        )
    except KeyError as exc:
        raise ExchangeError(f"Bybit sent a position without {exc!s:.40}") from None


def fill_from(
    executions: Sequence[Execution], link_id: str, closed_pnl: Decimal | None = None
) -> Fill | None:
    """One order's fill: quantity summed, price weighted by quantity, Bybit's own fees summed,
    and the closed PnL Bybit booked for it. None without executions."""
    if not executions:
        return None
    qty = sum((e.qty for e in executions), Decimal(0))
    value = sum((e.qty * e.price for e in executions), Decimal(0))
    last = max(executions, key=lambda e: e.at)
    return Fill(
        link_id=link_id,
        symbol=last.symbol,
        side=last.side,
        qty=qty,
        price=value / qty,
        fee=sum((e.fee for e in executions), Decimal(0)),
        at=last.at,
        exec_id=last.exec_id,
        closed_pnl=closed_pnl,
    )


def parse_rows(
    rows: Sequence[Mapping[str, Any]], parse: Callable[[Mapping[str, Any]], Any]
) -> list[Any]:
    """Every row ``parse`` accepts; a malformed one is logged and dropped, never fatal."""
    parsed = []
    for row in rows:
        try:
            item = parse(row)
        except ExchangeError as exc:
            log.warning("private data dropped: %s", exc)
            continue
        if item is not None:
            parsed.append(item)
    return parsed


# --- the stream ----------------------------------------------------------------------------

Push = tuple[str, list[Mapping[str, Any]]]  # (topic, data rows)


class PrivateStream:
    """The private WebSocket, logged in and subscribed to order, execution and position.

    Pushes reach ``on_push`` on the event loop. A watchdog reconnects a dropped or refused
    stream (1 s doubling to 30 s) and calls ``on_restored`` once a new connection is logged
    in, so that what was missed can be reconciled. ``healthy`` says whether pushes can be
    relied on; while it is False the adapter polls.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        *,
        on_push: Callable[[str, list[Mapping[str, Any]]], None],
        on_restored: Callable[[], None],
        check_interval: float = 1.0,
    ) -> None:
        self._url = url
        self._key = api_key
        self._secret = api_secret
        self._on_push = on_push
        self._on_restored = on_restored
        self._check_interval = check_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._socket: BybitSocket | None = None
        self._logged_in = False
        self._ever_logged_in = False
        self._ready: asyncio.Event = asyncio.Event()  # logged in and subscribed, or refused
        self._refusal = ""
        self._subscribed = 0
        self._watchdog: asyncio.Task[None] | None = None
        self._stopped = False  # read by pybit's threads too
        self._delay = check_interval
        self._next_try = 0.0

    @property
    def healthy(self) -> bool:
        socket = self._socket
        return socket is not None and self._logged_in and socket.is_live()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        await self._reconnect("starting")
        self._watchdog = asyncio.create_task(self._watch(), name="bybit-private-watchdog")

    async def stop(self) -> None:
        self._stopped = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        await self._close()

    async def drop(self) -> None:
        """Close the current connection; the watchdog opens a new one (for tests and for a
        stream that looks alive but is not)."""
        await self._close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval)
            if self.healthy or time.monotonic() < self._next_try:
                continue
            try:
                await self._reconnect("disconnected")
            except Exception:
                log.exception("private stream: reconnect failed")

    async def _reconnect(self, reason: str) -> None:
        if self._socket is not None:
            log.warning("private stream: %s; reconnecting", reason)
        await self._close()
        self._ready, self._refusal, self._subscribed = asyncio.Event(), "", 0
        try:
            self._socket = await asyncio.to_thread(self._open)
        except Exception as exc:
            self._back_off(f"cannot connect to {self._url}: {exc!r:.200}")
            return
        try:
            await asyncio.wait_for(self._ready.wait(), AUTH_TIMEOUT)
        except TimeoutError:
            self._back_off("no answer to the login and subscriptions")
            await self._close()
            return
        if self._refusal:
            self._back_off(f"Bybit refused {self._refusal}")
            await self._close()
            return
        self._logged_in = True
        log.info("private stream: connected to %s", self._url)
        self._delay = self._check_interval
        restored, self._ever_logged_in = self._ever_logged_in, True
        if restored:
            self._on_restored()

    def _back_off(self, why: str) -> None:
        log.warning(
            "private stream: %s; REST polling covers fills and closes; next try in %.0f s",
            why,
            self._delay,
        )
        self._next_try = time.monotonic() + self._delay
        self._delay = min(2 * self._delay, MAX_RECONNECT_DELAY)

    def _open(self) -> BybitSocket | None:
        """Connect, log in and subscribe. Blocking: runs in a worker thread."""
        socket = BybitSocket(
            self._url,
            "private",
            api_key=self._key,
            api_secret=self._secret,
            on_auth=lambda ok, why: self._hop(self._answered, "the login", ok, why),
            on_subscribed=lambda ok, why: self._hop(self._answered, "a subscription", ok, why),
        )
        if self._stopped:
            socket.close()
            return None
        for topic in TOPICS:
            socket.subscribe(topic, self._on_message)
        return socket

    async def _close(self) -> None:
        socket, self._socket = self._socket, None
        self._logged_in = False
        if socket is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(socket.close), 2 * CLOSE_TIMEOUT)
        except Exception as exc:
            log.warning("private stream: closing failed: %r", exc)

    # --- on pybit's threads: hop to the loop, never raise -------------------------------------

    def _hop(self, handler: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not self._stopped:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(handler, *args)

    def _answered(self, what: str, accepted: bool, message: str) -> None:
        """The login's answer, or a subscription's: ready once all three topics are on."""
        if not accepted:
            self._refusal = self._refusal or f"{what}: {message}"
            self._ready.set()
        elif what == "a subscription":
            self._subscribed += 1
            if self._subscribed == len(TOPICS):
                self._ready.set()

    def _on_message(self, message: Any) -> None:
        try:
            loop = self._loop
            if loop is None or self._stopped:
                return
            topic = str(message.get("topic") or "").split(".")[0]
            data = message.get("data") or []
            rows: list[Mapping[str, Any]] = [dict(r) for r in data if isinstance(r, Mapping)]
            loop.call_soon_threadsafe(self._deliver, topic, rows)
        except Exception:
            with contextlib.suppress(Exception):
                log.warning("private stream: message dropped", exc_info=True)

    def _deliver(self, topic: str, rows: list[Mapping[str, Any]]) -> None:
        if self._stopped:
            return
        try:
            self._on_push(topic, rows)
        except Exception:
            log.exception("private stream: handling a %s push failed", topic)
