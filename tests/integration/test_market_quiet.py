"""A quiet market is not a dead stream: the public stream is judged by Bybit's pongs and
answers, not by price silence; REST covers only a stream that is really down.

The real pybit client against the loopback fake Bybit, with short ping intervals and deadlines.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.fakes.bybit import FakeBybit
from tests.integration.market_support import TICKERS, MarketFactory, Recorder, market, started
from trader.exchange.market import BybitMarketData

pytestmark = pytest.mark.timeout(15)
__all__ = ["market"]  # fixtures

PING = 0.1  # seconds between pings
DEADLINE = 0.8  # seconds without a pong after which the stream is rebuilt (8 pings: a busy
# machine delaying a pong or two must not look like a dead stream)
QUIET = ("LINKUSDT", "TRXUSDT", "BNBUSDT")


async def _started(
    make: MarketFactory, symbols: tuple[str, ...], **options: Any
) -> tuple[BybitMarketData, Recorder]:
    """An adapter with fast pings and a short pong deadline (unless ``options`` say otherwise),
    streaming ``symbols``."""
    adapter, recorder = await started(
        make, **{"ping_interval": PING, "reconnect_after": DEADLINE, **options}
    )
    for symbol in symbols:
        await adapter.watch(symbol)
    assert await adapter.wait_streamed(symbols, timeout=3.0)
    return adapter, recorder


def _rest_tickers(fake: FakeBybit) -> int:
    return len(fake.requests_to(TICKERS))


async def _pongs_for(fake: FakeBybit, seconds: float) -> None:
    """Wait until the stream has answered pings for ``seconds`` from now."""
    since, pongs = time.monotonic(), fake.public_pongs
    await fake.wait_until(
        lambda: fake.public_pongs >= pongs + 3 and time.monotonic() - since > seconds,
        timeout=seconds + 3.0,
    )


async def test_fake_public_stream_answers_a_ping_with_a_pong_like_bybit(
    fake_bybit: FakeBybit,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(fake_bybit.ws_public_url) as ws,
    ):
        await ws.send_str(json.dumps({"op": "ping"}))
        pong = json.loads((await ws.receive(timeout=2.0)).data)
        await ws.send_str(json.dumps({"op": "ping", "req_id": "p1"}))
        tagged = json.loads((await ws.receive(timeout=2.0)).data)

    assert sorted(pong) == ["conn_id", "op", "ret_msg", "success"]
    assert (pong["success"], pong["ret_msg"], pong["op"]) == (True, "pong", "ping")
    assert isinstance(pong["conn_id"], str)
    assert pong["conn_id"]
    assert (tagged["ret_msg"], tagged["req_id"]) == ("pong", "p1")
    assert fake_bybit.public_pongs == 2


async def test_a_quiet_stream_is_kept_without_rest_tickers_while_its_pongs_flow(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    adapter, recorder = await _started(market, QUIET, stale_after=0.1)
    snapshots = {symbol: await adapter.ticker(symbol) for symbol in QUIET}
    rest_calls = _rest_tickers(fake_bybit)

    # No price moves for three times the old silence limit (and the pong deadline).
    await _pongs_for(fake_bybit, 3 * DEADLINE)

    assert fake_bybit.public_connections == 1
    assert {symbol: await adapter.ticker(symbol) for symbol in QUIET} == snapshots
    assert _rest_tickers(fake_bybit) == rest_calls
    # And the kept stream still carries a move when it comes.
    await fake_bybit.set_ticker("TRXUSDT", "0.12345")
    moved = await recorder.until(lambda t: t.last == Decimal("0.12345"))
    assert moved.symbol == "TRXUSDT"
    assert _rest_tickers(fake_bybit) == rest_calls


async def test_a_stream_whose_pongs_stop_is_rebuilt_and_covered_by_rest_meanwhile(
    market: MarketFactory, fake_bybit: FakeBybit
) -> None:
    adapter, recorder = await _started(market, ("AVAXUSDT",), stale_after=0.1)
    # The venue hangs: the connection stays up, but nothing is answered or pushed, and for
    # now no new connection is let in, so REST has to cover.
    fake_bybit.stall_public_streams()
    fake_bybit.refuse_public_streams = True
    await fake_bybit.set_ticker("AVAXUSDT", "29.125", bid="29.124", ask="29.126")

    covered = await recorder.until(lambda t: t.last == Decimal("29.125"))

    assert (covered.bid, covered.ask) == (Decimal("29.124"), Decimal("29.126"))
    assert _rest_tickers(fake_bybit) >= 1
    assert (await adapter.ticker("AVAXUSDT")).last == Decimal("29.125")

    fake_bybit.refuse_public_streams = False
    await fake_bybit.wait_until(
        lambda: (
            fake_bybit.public_connections >= 2
            and "tickers.AVAXUSDT" in fake_bybit.subscribed_topics()
        ),
        timeout=5.0,
    )
    assert await adapter.wait_streamed(["AVAXUSDT"], timeout=3.0)
    await fake_bybit.set_ticker("AVAXUSDT", "29.500")
    await recorder.until(lambda t: t.last == Decimal("29.5"))
    # The new stream answers: REST stops, and it is kept.
    connections, rest_calls = fake_bybit.public_connections, _rest_tickers(fake_bybit)
    await _pongs_for(fake_bybit, 2 * DEADLINE)
    assert (fake_bybit.public_connections, _rest_tickers(fake_bybit)) == (connections, rest_calls)


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "connection-lost"])
async def test_a_dropped_stream_is_still_detected_and_covered_by_rest_meanwhile(
    market: MarketFactory, fake_bybit: FakeBybit, abrupt: bool
) -> None:
    # Pings and their deadline far away: only the closed socket can tell.
    _, recorder = await _started(
        market, ("HYPEUSDT",), stale_after=0.1, ping_interval=5.0, reconnect_after=30.0
    )
    fake_bybit.refuse_public_streams = True
    await fake_bybit.drop_public_streams(abrupt=abrupt)
    await fake_bybit.set_ticker("HYPEUSDT", "31.500")

    assert (await recorder.until(lambda t: t.last == Decimal("31.5"))).symbol == "HYPEUSDT"
    assert _rest_tickers(fake_bybit) >= 1

    fake_bybit.refuse_public_streams = False
    await fake_bybit.wait_for_subscription("tickers.HYPEUSDT", timeout=5.0)
    await fake_bybit.set_ticker("HYPEUSDT", "31.750")
    assert (await recorder.until(lambda t: t.last == Decimal("31.75"))).symbol == "HYPEUSDT"
    assert fake_bybit.public_connections == 2


def test_pings_must_be_able_to_beat_the_deadline() -> None:
    with pytest.raises(ValueError, match="cannot show life"):
        BybitMarketData("http://127.0.0.1:9", "ws://x", ping_interval=5, reconnect_after=5)
