"""Bybit's wire rules without a network: where -1, 429 and 403 land in the error taxonomy, that a
ban is never retried, the gate that holds a ban for every client of a host, and the clock
offset the private login allows for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot import render
from tests.unit.bybit_support import failed, one_attempt, refused
from trader.errors import Banned, ExchangeError, OutcomeUnknown, RateLimited, Retryable
from trader.events import ClockSkewed, VenueBanLifted, VenueBanned
from trader.exchange import bybit_wire
from trader.exchange.bybit_clock import SKEW_REPORTED_MS, offset_from
from trader.exchange.bybit_stream import LOGIN_VALID_MS, login_expiry_ms
from trader.exchange.venue_gate import GateEvent, VenueGate, shared_gate

MS = 1_000_000  # ns


# --- the taxonomy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "order", "expected"),
    [
        (refused(-1), False, Retryable),  # "request expired": a read is asked again
        (refused(-1), True, OutcomeUnknown),  # an order may have been placed: look it up
        (refused(429), False, RateLimited),  # "high server load, please retry"
        (refused(429), True, RateLimited),  # refused before anything: sent again
        (failed(429), False, RateLimited),  # "system level frequency protection"
        (failed(429), True, RateLimited),
        (failed(403), False, Banned),  # "access too frequent": this IP is banned
        (failed(403), True, Banned),  # refused at the gate: the order was not placed
    ],
)
async def test_each_answer_lands_in_its_class(
    error: Exception, order: bool, expected: type[ExchangeError]
) -> None:
    caught = await one_attempt(error, order=order)
    assert type(caught) is expected
    assert "secret" not in str(caught)


@pytest.mark.parametrize("refusal", [failed(403), Banned("banned by the gate")])
async def test_a_ban_is_never_retried(refusal: Exception) -> None:
    sent = 0

    def call() -> None:
        nonlocal sent
        sent += 1
        raise refusal

    with pytest.raises(Banned, match=r"the order was not sent|this IP is banned"):
        await bybit_wire.call_pybit("order", call, order=True)
    assert sent == 1


def test_pybit_is_given_no_code_to_retry() -> None:
    http = bybit_wire.make_http("http://127.0.0.1:9", gate=VenueGate())
    # A non-empty set (pybit replaces an empty one by its defaults) holding only success,
    # which never reaches pybit's retry check; one attempt on no answer either.
    assert http.retry_codes == {0}
    assert (http.max_retries, http.force_retry) == (1, False)


# --- the gate ------------------------------------------------------------------------------------


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _delivered() -> None:
    """Let the loop run what the gate handed it (``call_soon_threadsafe``, in order)."""
    await asyncio.sleep(0)


async def test_a_ban_refuses_every_request_until_its_end_and_is_told_once() -> None:
    ticks = Ticks()
    gate = VenueGate(ban_seconds=600, monotonic=ticks)
    events: list[GateEvent] = []
    gate.subscribe(events.append)
    before = gate.check()
    gate.refused("HTTP 403 on /v5/account/wallet-balance")
    gate.refused("HTTP 403 on /v5/market/tickers")  # another request that was in flight
    await _delivered()
    assert gate.banned
    with pytest.raises(Banned) as caught:
        gate.check()
    assert caught.value.until is not None
    assert f"{caught.value.until:%H:%M:%S} UTC" in str(caught.value)
    gate.answered(before)  # an answer to a request sent before the ban ends nothing
    ticks.now += 599
    with pytest.raises(Banned):
        gate.check()
    ticks.now += 1
    sent = gate.check()  # the period is over: the next request goes out
    assert gate.banned  # ... but only an answer to it ends the ban
    gate.answered(sent)
    await _delivered()
    assert not gate.banned
    banned, lifted = events
    assert isinstance(banned, VenueBanned)
    assert banned.detail == "HTTP 403 on /v5/account/wallet-balance"
    assert isinstance(lifted, VenueBanLifted)


async def test_a_403_after_the_period_starts_a_new_one_without_telling_again() -> None:
    ticks = Ticks()
    gate = VenueGate(ban_seconds=10, monotonic=ticks)
    events: list[GateEvent] = []
    gate.subscribe(events.append)
    gate.refused("HTTP 403 on /a")
    ticks.now += 10
    gate.check()
    gate.refused("HTTP 403 on /a")  # still banned
    with pytest.raises(Banned):
        gate.check()
    await _delivered()
    assert len(events) == 1


async def test_an_unsubscribed_listener_hears_nothing() -> None:
    gate = VenueGate()
    events: list[GateEvent] = []
    leave = gate.subscribe(events.append)
    leave()
    gate.refused("HTTP 403 on /a")
    await _delivered()
    assert events == []


def test_clients_of_one_host_share_its_gate() -> None:
    first = shared_gate("https://api.bybit.com")
    assert shared_gate("https://API.bybit.com/") is first
    assert shared_gate("https://api.bytick.com") is not first
    assert bybit_wire.make_http("https://api.bybit.com").gate is first


# --- the clock -----------------------------------------------------------------------------------


def test_the_offset_is_bybits_time_against_the_middle_of_the_round_trip() -> None:
    sent, received = 1_000_000 * MS, 1_000_040 * MS  # a 40 ms round trip
    answer: dict[str, Any] = {"result": {"timeNano": str(1_003_020 * MS)}, "time": 1}
    measured = offset_from(answer, sent, received)
    assert (measured.offset_ms, measured.round_trip_ms) == (3000, 40)
    assert measured.reported
    # Without timeNano: the envelope's time in ms, else timeSecond.
    assert offset_from({"result": {}, "time": 999_980}, sent, received).offset_ms == -40
    seconds = offset_from({"result": {"timeSecond": "1001"}}, sent, received)
    assert seconds.offset_ms == 980
    assert not seconds.reported
    with pytest.raises(ExchangeError):
        offset_from({"result": {}}, sent, received)


@pytest.mark.parametrize("offset_ms", [-4000, 0, 3000, 60_000])
def test_a_login_expires_after_bybits_clock_whatever_the_offset(offset_ms: int) -> None:
    local_ms = 1_700_000_000_000
    bybit_now_ms = local_ms + offset_ms
    expires = login_expiry_ms(local_ms, offset_ms)
    assert expires - bybit_now_ms == LOGIN_VALID_MS


def test_a_skew_is_said_with_its_size_and_what_to_do() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    behind = render.clock_skewed_text(ClockSkewed(3204, 12, at))
    assert "3204 ms behind" in behind
    assert "NTP" in behind
    ahead = render.clock_skewed_text(ClockSkewed(-1500, 12, at))
    assert "1500 ms ahead" in ahead
    assert abs(-1500) > SKEW_REPORTED_MS


def test_a_ban_is_said_with_its_end() -> None:
    until = datetime(2026, 1, 1, 12, 10, tzinfo=UTC)
    text = render.venue_banned_text(
        VenueBanned(until, "HTTP 403 on /v5/order/create"), ZoneInfo("UTC")
    )
    assert "12:10:00 UTC" in text
    berlin = render.venue_banned_text(VenueBanned(until, "HTTP 403"), ZoneInfo("Europe/Berlin"))
    assert "13:10:00 CET" in berlin
    assert "stop-loss" in text


async def test_a_not_modified_answer_is_success_only_for_its_own_code() -> None:
    def leverage_already_set(**_: Any) -> Any:
        raise refused(bybit_wire.LEVERAGE_NOT_MODIFIED)

    answer = await bybit_wire.call_pybit(
        "set leverage", leverage_already_set, unchanged=bybit_wire.LEVERAGE_NOT_MODIFIED
    )
    assert answer is None
    with pytest.raises(ExchangeError) as refusal:
        await bybit_wire.call_pybit(
            "set leverage", leverage_already_set, unchanged=bybit_wire.TPSL_NOT_MODIFIED
        )
    assert refusal.value.code == bybit_wire.LEVERAGE_NOT_MODIFIED
